-- Nobody writes the tables directly. Operators and daemons change state only through the SECURITY DEFINER
-- functions in schema `canary`, which take the actor from session_user, check the request (the rollout's state, the
-- lease, the distinct approver) and write their audit events in the same transaction. The application roles keep
-- SELECT (through canary_viewer) and EXECUTE on the functions of their role, nothing else: a row that says "bob
-- approved" can only have been written by bob's login.
--
-- Errors the functions raise on purpose carry a message written for the person at the terminal:
--   SQLSTATE CNIN0  the request does not fit (unknown id, ended rollout, …)         -> canaryctl exit 65
--   SQLSTATE CNUN0  the daemon lost its lease, or the intent changed under it         -> retried by the daemon
--   SQLSTATE 42501  with a message that starts "permission denied: "                 -> canaryctl exit 77
-- Each function runs with search_path = public, pg_temp (pg_temp last, so a temporary table cannot shadow ours).

CREATE SCHEMA canary;
REVOKE ALL ON SCHEMA canary FROM PUBLIC;
GRANT USAGE ON SCHEMA canary TO canary_viewer, canary_operator, canary_controller;
-- Functions are executable by PUBLIC unless said otherwise; ours are not.
ALTER DEFAULT PRIVILEGES IN SCHEMA canary REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Take every write privilege back (column grants go with the table's).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON policies, policy_steps, policy_slos, services, service_versions,
    audit_events, rollouts, measurements, decisions, slo_verdicts, commands
    FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
REVOKE ALL ON SEQUENCE policies_id_seq, service_versions_id_seq, audit_events_id_seq, rollouts_id_seq,
    commands_id_seq, measurements_id_seq, decisions_id_seq
    FROM PUBLIC, canary_viewer, canary_operator, canary_controller;

-- ---------------------------------------------------------------------------------------------------------------
-- Shared pieces (not granted to anyone)

CREATE FUNCTION canary.audit(p_rollout bigint, p_service text, p_actor text, p_kind text, p_reason text,
                             p_data jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO audit_events (rollout_id, service, actor, kind, reason, data)
    VALUES (p_rollout, p_service, coalesce(p_actor, session_user), p_kind, p_reason, coalesce(p_data, '{}'));
$$;

CREATE FUNCTION canary.refuse(p_state text, p_message text, p_hint text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = p_message, HINT = coalesce(p_hint, '');
END
$$;

-- The lease check every daemon write starts with: locks the row; returns it.
CREATE FUNCTION canary.leased(p_id bigint, p_owner text) RETURNS rollouts
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r rollouts;
BEGIN
    SELECT * INTO r FROM rollouts WHERE id = p_id AND lease_owner = p_owner AND lease_until > now() FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('rollout %s: lease lost to another daemon; skipping this turn', p_id));
    END IF;
    RETURN r;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Operators

-- Stores a policy as a new immutable version unless the latest has the same source. The steps and SLO rows come
-- from the parsed spec canaryctl sends (the daemon runs on the source; the rows serve reports and SQL users).
CREATE FUNCTION canary.apply_policy(p_name text, p_source text, p_spec jsonb, OUT version integer,
                                    OUT created boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    sha text := encode(sha256(convert_to(p_source, 'UTF8')), 'hex');
    latest record;
    pid bigint;
    s jsonb;
    i integer := 0;
BEGIN
    IF p_spec->>'name' IS DISTINCT FROM p_name THEN
        PERFORM canary.refuse('CNIN0', format('the policy''s spec names %L, not %L', p_spec->>'name', p_name));
    END IF;
    IF jsonb_typeof(p_spec->'steps') IS DISTINCT FROM 'array' OR jsonb_array_length(p_spec->'steps') = 0 THEN
        PERFORM canary.refuse('CNIN0', format('policy %L has no steps', p_name));
    END IF;
    PERFORM pg_advisory_xact_lock(1668178288, hashtext(p_name)); -- "canp"
    SELECT p.version, p.content_sha256 INTO latest FROM policies p WHERE p.name = p_name
        ORDER BY p.version DESC LIMIT 1;
    IF FOUND AND latest.content_sha256 = sha THEN
        version := latest.version;
        created := false;
        RETURN;
    END IF;
    version := coalesce(latest.version, 0) + 1;
    INSERT INTO policies (name, version, content_sha256, source, spec, created_by)
        VALUES (p_name, version, sha, p_source, p_spec, session_user) RETURNING id INTO pid;
    FOR s IN SELECT value FROM jsonb_array_elements(p_spec->'steps') LOOP
        INSERT INTO policy_steps (policy_id, idx, weight_pct, hold_ms, approval)
            VALUES (pid, i, (s->>'weight')::double precision, (s->>'hold_ms')::bigint,
                    coalesce((s->>'approval')::boolean, false));
        i := i + 1;
    END LOOP;
    i := 0;
    FOR s IN SELECT value FROM jsonb_array_elements(coalesce(p_spec->'slos', '[]')) LOOP
        INSERT INTO policy_slos (policy_id, idx, name, metric, quantile, max_value, max_increase, tolerance)
            VALUES (pid, i, s->>'name', s->>'metric', (s->>'quantile')::double precision,
                    (s->>'max')::double precision, (s->>'max_increase')::double precision,
                    (s->>'tolerance')::double precision);
        i := i + 1;
    END LOOP;
    PERFORM canary.audit(NULL, NULL, NULL, 'policy.applied', NULL,
                         jsonb_build_object('policy', p_name, 'version', version, 'content_sha256', sha));
    created := true;
END
$$;

-- Stores a service: the services row on first apply (live slot = p_initial_live; later applies keep the live slot),
-- and a new version unless the latest has the same source.
CREATE FUNCTION canary.apply_service(p_name text, p_source text, p_spec jsonb, p_initial_live smallint,
                                     OUT version integer, OUT created boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    sha text := encode(sha256(convert_to(p_source, 'UTF8')), 'hex');
    latest record;
BEGIN
    IF p_spec->>'name' IS DISTINCT FROM p_name THEN
        PERFORM canary.refuse('CNIN0', format('the service''s spec names %L, not %L', p_spec->>'name', p_name));
    END IF;
    PERFORM pg_advisory_xact_lock(1668178291, hashtext(p_name)); -- "cans"
    INSERT INTO services (name, live_slot) VALUES (p_name, p_initial_live) ON CONFLICT (name) DO NOTHING;
    SELECT v.version, v.content_sha256 INTO latest FROM service_versions v WHERE v.service = p_name
        ORDER BY v.version DESC LIMIT 1;
    IF FOUND AND latest.content_sha256 = sha THEN
        version := latest.version;
        created := false;
        RETURN;
    END IF;
    version := coalesce(latest.version, 0) + 1;
    INSERT INTO service_versions (service, version, content_sha256, source, spec, created_by)
        VALUES (p_name, version, sha, p_source, p_spec, session_user);
    UPDATE services SET updated_at = now() WHERE name = p_name;
    PERFORM canary.audit(NULL, p_name, NULL, 'service.applied',  NULL,
                         jsonb_build_object('service', p_name, 'version', version, 'content_sha256', sha));
    created := true;
END
$$;

-- Starts a rollout of p_candidate on p_service with the latest version of p_policy; the candidate goes to the idle
-- slot. Returns the rollout's id.
CREATE FUNCTION canary.start_rollout(p_service text, p_candidate text, p_policy text, p_reason text)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    svc record;
    pid bigint;
    rid bigint;
BEGIN
    IF p_candidate IS NULL OR length(p_candidate) NOT BETWEEN 1 AND 127 THEN
        PERFORM canary.refuse('CNIN0', 'the candidate version must be 1 to 127 characters long');
    END IF;
    IF length(p_reason) > 500 THEN
        PERFORM canary.refuse('CNIN0', format('the reason is %s characters long; the limit is 500',
                                               length(p_reason)));
    END IF;
    SELECT s.live_slot, s.live_version, v.id AS version_id INTO svc
        FROM services s JOIN service_versions v ON v.service = s.name
        WHERE s.name = p_service ORDER BY v.version DESC LIMIT 1 FOR UPDATE OF s;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('unknown service ''%s''; apply it first with '
                                               '''canaryctl service apply FILE''', p_service));
    END IF;
    SELECT id INTO pid FROM policies WHERE name = p_policy ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('unknown policy ''%s''; apply it first with '
                                               '''canaryctl policy apply FILE''', p_policy));
    END IF;
    BEGIN
        INSERT INTO rollouts (service, service_version_id, policy_id, candidate, baseline, candidate_slot, reason,
                              created_by)
            VALUES (p_service, svc.version_id, pid, p_candidate, svc.live_version, 1 - svc.live_slot, p_reason,
                    session_user)
            RETURNING id INTO rid;
    EXCEPTION WHEN unique_violation THEN
        PERFORM canary.refuse('CNIN0', format('service ''%s'' already has an active rollout; wait for it, or '
                                               'abort it with ''canaryctl rollout abort ID''', p_service));
    END;
    PERFORM canary.audit(rid, p_service, NULL, 'rollout.started', p_reason,
                         jsonb_strip_nulls(jsonb_build_object('candidate', p_candidate, 'baseline', svc.live_version,
                             'candidate_slot', 1 - svc.live_slot, 'policy', p_policy, 'policy_id', pid::text)));
    RETURN rid;
END
$$;

-- Queues an operator's command for the owning daemon (the insert NOTIFYs). The rollout row is locked, so a rollout
-- that is ending either ends first (and the command is refused here) or answers the command when it ends.
CREATE FUNCTION canary.queue_command(p_rollout bigint, p_kind text, p_reason text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    cid bigint;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('approve', 'pause', 'resume', 'abort', 'promote_full') THEN
        PERFORM canary.refuse('CNIN0', format('unknown command %L; one of approve, pause, resume, abort, '
                                               'promote_full', p_kind));
    END IF;
    IF length(p_reason) > 500 THEN
        PERFORM canary.refuse('CNIN0', format('the reason is %s characters long; the limit is 500',
                                               length(p_reason)));
    END IF;
    SELECT ro.phase, ro.created_by, coalesce((p.spec->>'approver_must_differ')::boolean, false) AS differ,
           p.name AS policy
        INTO r FROM rollouts ro JOIN policies p ON p.id = ro.policy_id WHERE ro.id = p_rollout FOR UPDATE OF ro;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('no rollout with id %s; ''canaryctl rollout status'' lists them',
                                               p_rollout));
    END IF;
    IF r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed') THEN
        PERFORM canary.refuse('CNIN0', format('rollout %s has ended (%s); nothing to %s', p_rollout, r.phase,
                                               p_kind));
    END IF;
    IF p_kind = 'approve' AND r.differ AND r.created_by = session_user THEN
        PERFORM canary.refuse('42501', format('permission denied: ''%s'' started rollout %s and policy ''%s'' '
                                               'requires a different approver (approval.distinct_approver); ask '
                                               'another operator to approve', session_user, p_rollout, r.policy));
    END IF;
    INSERT INTO commands (rollout_id, kind, actor, reason) VALUES (p_rollout, p_kind, session_user, p_reason)
        RETURNING id INTO cid;
    RETURN cid;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The controller (canaryd)

-- Claims up to p_max due rollouts for p_owner. Always returns at least one row: the first column is the database's
-- clock (ms since the epoch), the one clock every daemon's core runs on; id is NULL when nothing was due.
CREATE FUNCTION canary.claim(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (now_ms bigint, id bigint, due boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH c AS (
        UPDATE rollouts SET lease_owner = p_owner, lease_until = now() + p_lease_ms * interval '1 ms'
        WHERE rollouts.id IN (
            SELECT r.id FROM rollouts r
            WHERE ((r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND
                    (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c
                        WHERE c.rollout_id = r.id AND c.handled_at IS NULL)))
                OR (r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
                    AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now()))
              AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now())
            ORDER BY r.next_tick_at LIMIT p_max FOR UPDATE SKIP LOCKED)
        RETURNING rollouts.id, rollouts.next_tick_at <= now() AS due)
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, c.id, c.due
    FROM (SELECT 1) one LEFT JOIN c ON true;
$$;

-- Extends p_owner's lease and returns the recorded intent (candidate percent), right before a gateway move.
CREATE FUNCTION canary.renew_lease(p_id bigint, p_owner text, p_lease_ms bigint) RETURNS double precision
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w double precision;
BEGIN
    UPDATE rollouts SET lease_until = now() + p_lease_ms * interval '1 ms'
        WHERE id = p_id AND lease_owner = p_owner AND lease_until > now() RETURNING weight INTO w;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('rollout %s: lease lost to another daemon; not touching the gateway',
                                               p_id));
    END IF;
    RETURN w;
END
$$;

CREATE FUNCTION canary.release_leases(p_owner text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE rollouts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = p_owner;
$$;

-- Records a tick or a command in one transaction: state, intended weight, measurement, decision, verdicts and audit
-- events. p_doc (built by canaryd from the core's result):
--   phase, step, weight, state, status, reason, decision, next_tick_ms, set_weight, slos (the verdicts as shown in
--   status and the audit), verdicts [{slo, verdict, candidate, baseline, objective, n_candidate, n_baseline, why}],
--   measurement {at (epoch seconds), baseline, candidate} (ticks only), command {id, error} (commands only).
-- The actor of a command's events is the command's own actor (written by canary.queue_command from session_user),
-- never a value the daemon passes. Returns false when the command was already answered (nothing is written).
CREATE FUNCTION canary.record(p_id bigint, p_owner text, p_doc jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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

-- The gateway confirmed p_weight for the candidate (p_reconciled: it had drifted, carrying p_found). Only the lease
-- holder confirms, and only the intent still recorded.
CREATE FUNCTION canary.confirm_weight(p_id bigint, p_owner text, p_weight double precision, p_reconciled boolean,
                                      p_found double precision) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    svc text;
BEGIN
    UPDATE rollouts SET applied_weight = p_weight, updated_at = clock_timestamp()
        WHERE id = p_id AND weight = p_weight AND lease_owner = p_owner AND lease_until > now()
        RETURNING service INTO svc;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('rollout %s: lease lost or intent changed before the gateway was '
                                               'confirmed; the lease holder reconciles', p_id));
    END IF;
    IF p_reconciled THEN
        PERFORM canary.audit(p_id, svc, NULL, 'weight.reconciled', NULL,
                             jsonb_build_object('weight', p_weight, 'found', p_found));
    ELSE
        PERFORM canary.audit(p_id, svc, NULL, 'weight.confirmed', NULL, jsonb_build_object('weight', p_weight));
    END IF;
END
$$;

-- Records why a rollout holds without a tick (gateway or metrics unavailable); audits only a change of reason.
CREATE FUNCTION canary.hold(p_id bigint, p_owner text, p_reason text, p_next_tick_ms bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r rollouts;
BEGIN
    r := canary.leased(p_id, p_owner);
    UPDATE rollouts SET reason = CASE WHEN phase IN ('promoted', 'rolled_back', 'aborted', 'failed') THEN reason
                                      ELSE p_reason END,
        updated_at = clock_timestamp(), next_tick_at = clock_timestamp() + p_next_tick_ms * interval '1 ms'
        WHERE id = p_id;
    -- An ended rollout keeps its final reason in the row, so compare with its last hold event since it ended
    -- instead: a gateway that stays away after an abort is one event (which canaryctl abort quotes), not one per
    -- interval.
    IF r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed') THEN
        IF (SELECT e.reason FROM audit_events e WHERE e.rollout_id = p_id AND e.kind = 'hold'
                AND e.at >= coalesce(r.finished_at, '-infinity')
            ORDER BY e.id DESC LIMIT 1) IS DISTINCT FROM p_reason THEN
            PERFORM canary.audit(p_id, r.service, NULL, 'hold', p_reason, NULL);
        END IF;
    ELSIF r.reason IS DISTINCT FROM p_reason THEN
        PERFORM canary.audit(p_id, r.service, NULL, 'hold', p_reason, NULL);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Who may call what. (The default privileges above already keep PUBLIC out; this says it for each function.)
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA canary FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.apply_policy(text, text, jsonb), canary.apply_service(text, text, jsonb, smallint),
    canary.start_rollout(text, text, text, text), canary.queue_command(bigint, text, text)
    TO canary_operator;
GRANT EXECUTE ON FUNCTION canary.claim(text, bigint, integer), canary.renew_lease(bigint, text, bigint),
    canary.release_leases(text), canary.record(bigint, text, jsonb),
    canary.confirm_weight(bigint, text, double precision, boolean, double precision),
    canary.hold(bigint, text, text, bigint)
    TO canary_controller;
