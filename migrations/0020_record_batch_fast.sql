-- A cheaper recorded tick (issue 13: 10,000 rollouts per canaryd). bench/record_batch.sh measured PostgreSQL's side
-- of canary.record_batch at 1.5-2.7 ms of backend CPU per tick (bench/results/record_batch-before.txt): pglz
-- compressing each tick's ~14 kB state, SQL functions parsed and planned again for every audit event's hash, and
-- some fifteen plpgsql statements per tick in a subtransaction of its own. Nothing recorded changes: the same rows,
-- the same audit events with the same bytes hashed in the same chains, the same refusals.
--
-- 1. canary.record_batch records its plain ticks set-based. A plain tick is a tick (no command) whose rollout this
--    owner leases, has not ended, stays in its phase, whose weight is a number in 0..100 and that does not set a
--    weight (the steady state: a hold). They are locked in id order in one statement and written in a handful of
--    statements (the rollouts, measurements, decisions, verdicts, one 'tick' audit event each, in the rollout's
--    own chain through the same trigger), inside one subtransaction. Every other element, and every plain one when
--    that subtransaction fails (a document that does not fit a column), goes through canary.record in a
--    subtransaction of its own as before, so a refusal still costs that element only and returns its SQLSTATE and
--    message, and every check canary.record makes is still made by canary.record. A batch that names a rollout
--    twice goes that way entirely (one element's write must see the other's). Its statements run on generic plans.
-- 2. canary_audit_hash is one plpgsql function: the same bytes (the field encoding of 0004, converted to UTF-8 once
--    instead of per piece), but its statements are planned once per session. As LANGUAGE sql (IMMUTABLE over the
--    STABLE convert_to) neither it nor canary_audit_field was inlined, so every audit event parsed and planned ten
--    SQL function bodies.
-- 3. canary.audit skips canary.notify_outbox (a join of rollouts, policies and service versions) for an event that
--    is no notification whatever the rollout's phase, such as every 'tick'. With an active phase canary.notify_event
--    answers at least as often as with any other, so the skip changes no outbox row.
-- 4. The large JSON columns written every tick are compressed with lz4 where the server has it (pglz took 13-16% of
--    the backend's CPU); values already stored stay as they are, and both read the same.

-- 4.
DO $$
BEGIN
    ALTER TABLE rollouts ALTER COLUMN state SET COMPRESSION lz4, ALTER COLUMN status SET COMPRESSION lz4;
    ALTER TABLE measurements ALTER COLUMN baseline SET COMPRESSION lz4, ALTER COLUMN candidate SET COMPRESSION lz4;
    ALTER TABLE audit_events ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available in this server; the columns keep pglz';
END
$$;

-- 2. The encoding of 0004: prev_hash || "canary.audit.v1\n" || per field "<UTF-8 byte length>:<value>\n" or "-\n".
CREATE OR REPLACE FUNCTION canary_audit_hash(prev text, id bigint, at timestamptz, recorded_by text, actor text,
                                             rollout_id bigint, service text, kind text, reason text, data jsonb)
    RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    enc text := prev || 'canary.audit.v1' || chr(10);
    v text;
BEGIN
    FOREACH v IN ARRAY ARRAY[id::text, ((extract(epoch FROM at) * 1000000)::bigint)::text, recorded_by, actor,
                             rollout_id::text, service, kind, reason, data::text] LOOP
        IF v IS NULL THEN
            enc := enc || '-' || chr(10);
        ELSE
            enc := enc || octet_length(convert_to(v, 'UTF8')) || ':' || v || chr(10);
        END IF;
    END LOOP;
    RETURN encode(sha256(convert_to(enc, 'UTF8')), 'hex');
END
$$;

-- 3. canary.audit as in 0006.
CREATE OR REPLACE FUNCTION canary.audit(p_rollout bigint, p_service text, p_actor text, p_kind text, p_reason text,
                                        p_data jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    e audit_events;
BEGIN
    INSERT INTO audit_events (rollout_id, service, actor, kind, reason, data)
        VALUES (p_rollout, p_service, coalesce(p_actor, session_user), p_kind, p_reason, coalesce(p_data, '{}'))
        RETURNING * INTO e;
    IF canary.notify_event(e.kind, e.data, 'progressing') IS NOT NULL THEN
        PERFORM canary.notify_outbox(e);
    END IF;
END
$$;

-- 1.
-- Generic plans only (also for the canary.record calls it makes): a custom plan takes the batch's ~1 MB of documents
-- in as a constant, copied for every statement planned (GetCachedPlan was a fifth of the backend's time, datumCopy
-- most of that); the generic plans look the rows up by primary key.
CREATE OR REPLACE FUNCTION canary.record_batch(p_owner text, p_ids bigint[], p_docs jsonb)
    RETURNS TABLE (idx integer, ok boolean, err_state text, err_message text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
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
