-- Pre-flight runs (issue 12, items 3 and 4). A rollout whose pinned policy has a preflight: section stays `pending`
-- (no weight applied; no new phase: pending already means "nothing moved yet") while canaryd drives the candidate's
-- slot directly with the policy's workload. Its state is here, one row per rollout, so a daemon that dies during a
-- pre-flight leaves it `running` under its own owner, and the daemon that takes the rollout over (its lease expired)
-- starts it again from scratch: a fixed-sample test is judged on a whole run, never on a piece of one. After
-- p_max_attempts interrupted runs the rollout fails ("failed": it could not go on) with the reason.
--
-- canary.preflight_start (under the rollout's lease) opens an attempt; canary.preflight_finish (from the pre-flight's
-- own thread and connection: the owner and attempt name the run, so a run a newer attempt replaced is refused)
-- records the outcome in one transaction: passed (audited with the per-band figures; the rollout goes on to step 1
-- at once), failed (a verdict failed: the rollout is rolled back before step 1, with a decision, the verdicts per
-- SLO and band, the audit events preflight.failed and state.changed, and queued commands answered, like any
-- rollback), error (it could not run: the rollout fails with the reason) or cancelled (the rollout ended meanwhile).

CREATE TABLE preflights (
    rollout_id  bigint PRIMARY KEY REFERENCES rollouts (id),
    state       text NOT NULL CHECK (state IN ('running', 'passed', 'failed', 'cancelled')),
    attempt     integer NOT NULL CHECK (attempt >= 1),
    owner       text NOT NULL,                      -- the daemon running (or that ran) the attempt
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    result      jsonb                               -- the per-band figures and verdicts, as audited
);
REVOKE ALL ON preflights FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON preflights TO canary_viewer;

-- Opens an attempt for a pending rollout the caller leases. Returns the attempt number, or 0 when the attempts ran
-- out and the rollout was failed here.
CREATE FUNCTION canary.preflight_start(p_id bigint, p_owner text, p_max_attempts integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r rollouts;
    pf preflights;
    att integer;
    msg text;
BEGIN
    r := canary.leased(p_id, p_owner);
    IF r.phase <> 'pending' THEN
        PERFORM canary.refuse('CNIN0', format('rollout %s is %s; a pre-flight runs only before step 1', p_id,
                                               r.phase));
    END IF;
    SELECT * INTO pf FROM preflights WHERE rollout_id = p_id FOR UPDATE;
    IF FOUND AND pf.state IN ('passed', 'failed') THEN
        PERFORM canary.refuse('CNIN0', format('rollout %s: its pre-flight has %s already', p_id, pf.state));
    END IF;
    att := coalesce(pf.attempt, 0) + 1;
    IF att > p_max_attempts THEN
        msg := format('pre-flight interrupted %s times (the daemon running it stopped: last %s); giving up',
                      att - 1, pf.owner);
        UPDATE preflights SET state = 'failed', finished_at = clock_timestamp(),
            result = jsonb_build_object('verdict', 'error', 'reason', msg) WHERE rollout_id = p_id;
        UPDATE rollouts SET phase = 'failed', reason = msg, updated_at = clock_timestamp(),
            finished_at = clock_timestamp(), next_tick_at = clock_timestamp() WHERE id = p_id;
        INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason)
            VALUES (p_id, -1, 0, 'abort', 'pending', 'failed', msg);
        PERFORM canary.audit(p_id, r.service, NULL, 'preflight.failed', msg,
                             jsonb_build_object('verdict', 'error', 'attempts', att - 1));
        PERFORM canary.audit(p_id, r.service, NULL, 'state.changed', msg,
                             jsonb_build_object('from', 'pending', 'to', 'failed'));
        UPDATE commands SET handled_at = clock_timestamp(), result = 'refused: rollout has ended (failed)'
            WHERE rollout_id = p_id AND handled_at IS NULL;
        RETURN 0;
    END IF;
    INSERT INTO preflights (rollout_id, state, attempt, owner) VALUES (p_id, 'running', att, p_owner)
        ON CONFLICT (rollout_id) DO UPDATE SET state = 'running', attempt = att, owner = p_owner,
            started_at = clock_timestamp(), finished_at = NULL, result = NULL;
    msg := CASE WHEN att = 1 THEN 'pre-flight running: the candidate''s slot under the policy''s workload'
                ELSE format('pre-flight running again (attempt %s of %s): %s stopped during attempt %s', att,
                            p_max_attempts, pf.owner, att - 1) END;
    UPDATE rollouts SET reason = msg, updated_at = clock_timestamp() WHERE id = p_id;
    PERFORM canary.audit(p_id, r.service, NULL, CASE WHEN att = 1 THEN 'preflight.started' ELSE 'preflight.restarted' END,
                         msg, jsonb_build_object('attempt', att, 'daemon', p_owner, 'previous', pf.owner));
    RETURN att;
END
$$;

-- Records a pre-flight's outcome (see the top). p_doc: {verdict: passed | failed | error | cancelled, reason,
-- result (the document: bands, table, verdicts [{slo, verdict, candidate, baseline, objective, n_candidate,
-- n_baseline, why}], the verdicts also accepted at the top)}. Returns what became of the rollout: 'passed', 'rolled_back', 'failed' or
-- 'cancelled'.
CREATE FUNCTION canary.preflight_finish(p_id bigint, p_owner text, p_attempt integer, p_doc jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r rollouts;
    pf preflights;
    verdict text := p_doc->>'verdict';
    why text := left(coalesce(p_doc->>'reason', 'pre-flight ' || coalesce(p_doc->>'verdict', '?')), 2000);
    new_phase text;
    dec_id bigint;
    v jsonb;
BEGIN
    IF verdict IS NULL OR verdict NOT IN ('passed', 'failed', 'error', 'cancelled') THEN
        PERFORM canary.refuse('CNIN0', format('pre-flight verdict %L is not passed, failed, error or cancelled',
                                               verdict));
    END IF;
    SELECT * INTO pf FROM preflights WHERE rollout_id = p_id FOR UPDATE;
    IF NOT FOUND OR pf.attempt <> p_attempt OR pf.owner <> p_owner OR pf.state <> 'running' THEN
        PERFORM canary.refuse('CNUN0', format('rollout %s: pre-flight attempt %s of %s is no longer the running '
                                               'one; its result is dropped', p_id, p_attempt, p_owner));
    END IF;
    SELECT * INTO r FROM rollouts WHERE id = p_id FOR UPDATE;
    IF r.phase <> 'pending' OR verdict = 'cancelled' THEN
        UPDATE preflights SET state = 'cancelled', finished_at = clock_timestamp(), result = p_doc->'result'
            WHERE rollout_id = p_id;
        PERFORM canary.audit(p_id, r.service, NULL, 'preflight.cancelled',
                             format('pre-flight stopped: the rollout is %s', r.phase),
                             jsonb_build_object('attempt', p_attempt));
        RETURN 'cancelled';
    END IF;
    IF verdict = 'passed' THEN
        UPDATE preflights SET state = 'passed', finished_at = clock_timestamp(), result = p_doc->'result'
            WHERE rollout_id = p_id;
        PERFORM canary.audit(p_id, r.service, NULL, 'preflight.passed', why, coalesce(p_doc->'result', '{}'));
        -- step 1 at once: due now, and the daemons told
        UPDATE rollouts SET reason = why, updated_at = clock_timestamp(), next_tick_at = clock_timestamp()
            WHERE id = p_id;
        PERFORM pg_notify('canary', 'rollout:' || p_id);
        RETURN 'passed';
    END IF;
    new_phase := CASE WHEN verdict = 'failed' THEN 'rolled_back' ELSE 'failed' END;
    UPDATE preflights SET state = 'failed', finished_at = clock_timestamp(), result = p_doc->'result'
        WHERE rollout_id = p_id;
    -- the candidate never had traffic: the intent stays 0, which the next turn confirms on the gateway
    UPDATE rollouts SET phase = new_phase, reason = why, updated_at = clock_timestamp(),
        finished_at = clock_timestamp(), next_tick_at = clock_timestamp() WHERE id = p_id;
    INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason)
        VALUES (p_id, -1, 0, CASE WHEN verdict = 'failed' THEN 'rollback' ELSE 'abort' END, 'pending', new_phase,
                why)
        RETURNING id INTO dec_id;
    FOR v IN SELECT value FROM jsonb_array_elements(coalesce(p_doc->'verdicts', p_doc->'result'->'verdicts', '[]')) LOOP
        INSERT INTO slo_verdicts (decision_id, slo, verdict, candidate, baseline, objective, n_candidate,
                                  n_baseline, why)
            VALUES (dec_id, 'preflight:' || (v->>'slo'), v->>'verdict', (v->>'candidate')::double precision,
                    (v->>'baseline')::double precision, (v->>'objective')::double precision,
                    (v->>'n_candidate')::double precision, (v->>'n_baseline')::double precision,
                    coalesce(v->>'why', ''));
    END LOOP;
    PERFORM canary.audit(p_id, r.service, NULL, 'preflight.failed', why,
                         coalesce(p_doc->'result', '{}') || jsonb_build_object('decision_id', dec_id));
    PERFORM canary.audit(p_id, r.service, NULL, 'state.changed', why,
                         jsonb_build_object('from', 'pending', 'to', new_phase));
    UPDATE commands SET handled_at = clock_timestamp(), result = format('refused: rollout has ended (%s)', new_phase)
        WHERE rollout_id = p_id AND handled_at IS NULL;
    PERFORM pg_notify('canary', 'rollout:' || p_id);
    RETURN new_phase;
END
$$;

REVOKE ALL ON FUNCTION canary.preflight_start(bigint, text, integer), canary.preflight_finish(bigint, text, integer, jsonb)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.preflight_start(bigint, text, integer),
    canary.preflight_finish(bigint, text, integer, jsonb) TO canary_controller;
