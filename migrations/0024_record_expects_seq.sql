-- A record of a tick judged on a row that changed since is refused (issue 13; "an operator who types SQL").
-- canaryd reads a rollout's row, judges it (reading metrics may take up to their timeout), then records; a write to
-- the row in between, such as an owner's `UPDATE rollouts SET state = ...` or `SET phase = 'paused'`, was overwritten
-- by the record without a trace (a lost update). Now:
--
-- 1. rollouts.state_seq (0021) goes up with every UPDATE that names state, state_seq, phase, step or weight: the row
--    as a tick is judged on. Lease renewals, holds and confirmed weights name none of them and leave it alone.
-- 2. A record document may carry the state_seq of the row it was judged on; canary.record then refuses it with
--    SQLSTATE CNST0 when the row's differs (under the row lock canary.leased takes, so no write slips in between),
--    and canary.record_batch sends such an element the one-by-one way, where canary.record refuses it the same way.
--    canaryd treats CNST0 like a lost lease: nothing of the tick is written, the rollout stays due and its next turn
--    judges the stored row. A document without state_seq is recorded as before.
--
-- canary.record is 0005's and canary.record_batch 0020's, each with only the check added (and 0022's jit = off).

DROP TRIGGER rollouts_state_seq ON rollouts;
CREATE TRIGGER rollouts_state_seq BEFORE UPDATE OF state, state_seq, phase, step, weight ON rollouts
    FOR EACH ROW EXECUTE FUNCTION canary_state_seq();

CREATE OR REPLACE FUNCTION canary.record(p_id bigint, p_owner text, p_doc jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    r rollouts;
    cmd commands;
    actor text;
    new_phase text := p_doc->>'phase';
    new_weight double precision := (p_doc->>'weight')::double precision;
    terminal boolean;
    dec_id bigint;
    v jsonb;
BEGIN
    r := canary.leased(p_id, p_owner);
    IF r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed') THEN
        PERFORM canary.refuse('CNIN0', format('rollout %s has ended (%s); nothing is recorded after the end',
                                               p_id, r.phase));
    END IF;
    IF p_doc ? 'state_seq' AND (p_doc->>'state_seq')::bigint IS DISTINCT FROM r.state_seq THEN
        PERFORM canary.refuse('CNST0', format('rollout %s changed since this daemon read it (version %s, now %s: '
                                               'another writer, such as an owner''s SQL); judged again from the '
                                               'stored row', p_id, p_doc->>'state_seq', r.state_seq));
    END IF;
    IF p_doc ? 'command' THEN
        SELECT * INTO cmd FROM commands WHERE id = (p_doc->'command'->>'id')::bigint AND rollout_id = p_id
            FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM canary.refuse('CNIN0', format('rollout %s has no command %s', p_id, p_doc->'command'->>'id'));
        END IF;
        IF cmd.handled_at IS NOT NULL THEN
            RETURN false;
        END IF;
        actor := cmd.actor;
        IF p_doc->'command'->>'error' IS NOT NULL THEN
            -- A refused command changes nothing but its own row, and is audited with the reason.
            UPDATE commands SET handled_at = clock_timestamp(), result = 'refused: ' || (p_doc->'command'->>'error')
                WHERE id = cmd.id;
            PERFORM canary.audit(p_id, r.service, actor, 'command.refused', cmd.reason,
                                 jsonb_build_object('command', cmd.kind, 'error', p_doc->'command'->>'error'));
            RETURN true;
        END IF;
    END IF;
    IF new_weight IS NULL OR new_weight < 0 OR new_weight > 100 THEN
        PERFORM canary.refuse('CNIN0', format('rollout %s: weight %s is not a share in 0..100', p_id,
                                               p_doc->>'weight'));
    END IF;
    terminal := new_phase IN ('promoted', 'rolled_back', 'aborted', 'failed');
    UPDATE rollouts SET phase = new_phase, step = (p_doc->>'step')::integer, weight = new_weight,
        state = p_doc->'state', status = p_doc->'status', reason = p_doc->>'reason', updated_at = clock_timestamp(),
        next_tick_at = clock_timestamp() + (p_doc->>'next_tick_ms')::bigint * interval '1 ms',
        finished_at = CASE WHEN terminal THEN clock_timestamp() END
        WHERE id = p_id;
    IF p_doc ? 'measurement' THEN
        INSERT INTO measurements (rollout_id, at, step, weight, baseline, candidate)
            VALUES (p_id, to_timestamp((p_doc->'measurement'->>'at')::double precision), r.step, r.weight,
                    p_doc->'measurement'->'baseline', p_doc->'measurement'->'candidate');
    END IF;
    INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason)
        VALUES (p_id, (p_doc->>'step')::integer, new_weight, p_doc->>'decision', r.phase, new_phase,
                p_doc->>'reason')
        RETURNING id INTO dec_id;
    FOR v IN SELECT value FROM jsonb_array_elements(coalesce(p_doc->'verdicts', '[]')) LOOP
        INSERT INTO slo_verdicts (decision_id, slo, verdict, candidate, baseline, objective, n_candidate,
                                  n_baseline, why)
            VALUES (dec_id, v->>'slo', v->>'verdict', (v->>'candidate')::double precision,
                    (v->>'baseline')::double precision, (v->>'objective')::double precision,
                    (v->>'n_candidate')::double precision, (v->>'n_baseline')::double precision, v->>'why');
    END LOOP;
    IF cmd.id IS NOT NULL THEN
        UPDATE commands SET handled_at = clock_timestamp(), result = 'accepted' WHERE id = cmd.id;
        -- promote --full skips the remaining steps and analysis: the emergency path, marked as such.
        PERFORM canary.audit(p_id, r.service, actor, 'command.accepted', cmd.reason,
                             jsonb_build_object('command', cmd.kind, 'decision_id', dec_id,
                                                'emergency', cmd.kind = 'promote_full'));
    ELSE
        PERFORM canary.audit(p_id, r.service, NULL, 'tick', p_doc->>'reason',
                             jsonb_build_object('decision_id', dec_id, 'decision', p_doc->>'decision',
                                                'step', (p_doc->>'step')::integer, 'weight', p_doc->'weight',
                                                'daemon', p_owner, 'slos', coalesce(p_doc->'slos', '[]')));
    END IF;
    IF new_phase <> r.phase THEN
        PERFORM canary.audit(p_id, r.service, actor, 'state.changed', p_doc->>'reason',
                             jsonb_build_object('from', r.phase, 'to', new_phase));
    END IF;
    IF coalesce((p_doc->>'set_weight')::boolean, false) AND new_weight <> r.weight THEN
        PERFORM canary.audit(p_id, r.service, actor, 'weight.intended', p_doc->>'reason',
                             jsonb_build_object('from', r.weight, 'to', new_weight));
    END IF;
    IF terminal THEN
        -- Commands still queued can no longer apply: answer them now, so no operator waits on them.
        UPDATE commands SET handled_at = clock_timestamp(), result = format('refused: rollout has ended (%s)',
                                                                            new_phase)
            WHERE rollout_id = p_id AND handled_at IS NULL;
    END IF;
    IF new_phase = 'promoted' THEN
        UPDATE services SET live_slot = r.candidate_slot, live_version = r.candidate, updated_at = now()
            WHERE name = r.service;
        PERFORM canary.audit(p_id, r.service, actor, 'service.live_changed', NULL,
                             jsonb_build_object('live_slot', r.candidate_slot, 'live_version', r.candidate));
    END IF;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION canary.record_batch(p_owner text, p_ids bigint[], p_docs jsonb)
    RETURNS TABLE (idx integer, ok boolean, err_state text, err_message text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
    SET jit = off
    AS $$
DECLARE
    n integer := coalesce(array_length(p_ids, 1), 0);
    i integer;
    plain integer[] := '{}';
    events bigint[];
    done boolean[];
    states text[];
    messages text[];
BEGIN
    IF jsonb_typeof(p_docs) IS DISTINCT FROM 'array' THEN
        PERFORM canary.refuse('CNIN0', 'record_batch: the documents are not a JSON array');
    END IF;
    IF n <> jsonb_array_length(p_docs) THEN
        PERFORM canary.refuse('CNIN0', format('record_batch: %s ids but %s documents', n,
                                               jsonb_array_length(p_docs)));
    END IF;
    done := array_fill(false, ARRAY[n]);
    states := array_fill(NULL::text, ARRAY[n]);
    messages := array_fill(NULL::text, ARRAY[n]);

    -- The plain ticks, set-based, in one subtransaction: whatever fails in it (a document that does not fit a
    -- column, a lock that times out or deadlocks) rolls back all of it, and they go one by one below.
    IF n > 0 AND (SELECT count(DISTINCT x) FROM unnest(p_ids) x) = n THEN
        BEGIN
            -- Which elements are plain, their rows locked in id order (canary.leased's lease check).
            SELECT coalesce(array_agg(x.i ORDER BY x.i), '{}') INTO plain FROM (
                SELECT e.i::integer AS i
                    FROM unnest(p_ids) WITH ORDINALITY AS e(id, i) JOIN rollouts r ON r.id = e.id
                    CROSS JOIN LATERAL (SELECT p_docs -> (e.i::integer - 1) AS d) doc
                    WHERE r.lease_owner = p_owner AND r.lease_until > now()
                      AND r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval')
                      AND jsonb_typeof(doc.d) = 'object' AND NOT doc.d ? 'command'
                      AND doc.d->>'phase' = r.phase
                      AND (NOT doc.d ? 'state_seq' OR doc.d->>'state_seq' = r.state_seq::text)
                      AND CASE WHEN jsonb_typeof(doc.d->'weight') = 'number'
                               THEN (doc.d->'weight')::numeric BETWEEN 0 AND 100 ELSE false END
                      AND (doc.d->'set_weight' IS NULL OR doc.d->'set_weight' IN ('false'::jsonb, 'null'::jsonb))
                    ORDER BY r.id
                    FOR UPDATE OF r) x;
            IF cardinality(plain) = 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'CNNP0', MESSAGE = 'record_batch: no plain tick';
            END IF;
            -- What canary.record writes for such a tick, for all of them: the row (r: as locked, before the
            -- update), the measurement (at the step and weight before the tick), the decision, its verdicts, and
            -- the 'tick' audit event naming the decision.
            WITH f AS MATERIALIZED (
                SELECT x.i, r.id, r.service, r.phase, r.step, r.weight, p_docs -> (x.i - 1) AS d
                    FROM unnest(plain) AS x(i) JOIN rollouts r ON r.id = p_ids[x.i]
            ), up AS (
                UPDATE rollouts r SET phase = f.d->>'phase', step = (f.d->>'step')::integer,
                    weight = (f.d->>'weight')::double precision, state = f.d->'state', status = f.d->'status',
                    reason = f.d->>'reason', updated_at = clock_timestamp(),
                    next_tick_at = clock_timestamp() + (f.d->>'next_tick_ms')::bigint * interval '1 ms',
                    finished_at = NULL
                    FROM f WHERE r.id = f.id
                    RETURNING r.id
            ), ms AS (
                INSERT INTO measurements (rollout_id, at, step, weight, baseline, candidate)
                    SELECT f.id, to_timestamp((f.d->'measurement'->>'at')::double precision), f.step, f.weight,
                           f.d->'measurement'->'baseline', f.d->'measurement'->'candidate'
                        FROM f WHERE f.d ? 'measurement' ORDER BY f.i
                    RETURNING id
            ), dec AS (
                INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason)
                    SELECT f.id, (f.d->>'step')::integer, (f.d->>'weight')::double precision, f.d->>'decision',
                           f.phase, f.d->>'phase', f.d->>'reason'
                        FROM f ORDER BY f.i
                    RETURNING id, rollout_id
            ), fd AS (
                SELECT f.*, dec.id AS dec_id FROM f JOIN dec ON dec.rollout_id = f.id
            ), vs AS (
                INSERT INTO slo_verdicts (decision_id, slo, verdict, candidate, baseline, objective, n_candidate,
                                          n_baseline, why)
                    SELECT fd.dec_id, v->>'slo', v->>'verdict', (v->>'candidate')::double precision,
                           (v->>'baseline')::double precision, (v->>'objective')::double precision,
                           (v->>'n_candidate')::double precision, (v->>'n_baseline')::double precision, v->>'why'
                        FROM fd, jsonb_array_elements(coalesce(fd.d->'verdicts', '[]')) AS v
                    RETURNING decision_id
            ), ev AS (
                INSERT INTO audit_events (rollout_id, service, actor, kind, reason, data)
                    SELECT fd.id, fd.service, session_user, 'tick', fd.d->>'reason',
                           jsonb_build_object('decision_id', fd.dec_id, 'decision', fd.d->>'decision',
                                              'step', (fd.d->>'step')::integer, 'weight', fd.d->'weight',
                                              'daemon', p_owner, 'slos', coalesce(fd.d->'slos', '[]'))
                        FROM fd ORDER BY fd.i
                    RETURNING id
            )
            SELECT array_agg(ev.id) INTO events FROM ev; -- (up, ms and vs run to completion unreferenced)
            IF cardinality(events) IS DISTINCT FROM cardinality(plain) THEN
                RAISE EXCEPTION 'record_batch: % plain ticks but % tick events', cardinality(plain),
                    cardinality(events);
            END IF;
            -- As canary.audit does (a 'tick' is no notification today; this keeps it so if that changes).
            PERFORM canary.notify_outbox(e) FROM audit_events e
                WHERE e.id = ANY (events) AND canary.notify_event(e.kind, e.data, 'progressing') IS NOT NULL;
            FOREACH i IN ARRAY plain LOOP
                done[i] := true;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            -- every element then goes through canary.record, which names what does not fit (CNNP0: none was
            -- plain, nothing to undo)
            RAISE DEBUG 'record_batch: the plain ticks go one by one: % %', SQLSTATE, SQLERRM;
        END;
    END IF;

    FOR i IN 1 .. n LOOP
        CONTINUE WHEN done[i];
        BEGIN
            PERFORM canary.record(p_ids[i], p_owner, p_docs -> (i - 1));
        EXCEPTION WHEN OTHERS THEN
            states[i] := SQLSTATE;
            messages[i] := SQLERRM;
        END;
    END LOOP;
    RETURN QUERY SELECT g, states[g] IS NULL, states[g], messages[g] FROM generate_series(1, n) AS g;
END
$$;
