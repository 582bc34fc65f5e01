-- Bounded storage (issue 13): the per-tick rows of rollouts that ended long ago go; the audit trail never does.
-- canary.gc(older_than, max_rollouts) deletes the measurements, decisions and SLO verdicts of up to max_rollouts
-- rollouts that finished more than older_than ago (at least one day), and records what it did as an audit event in
-- the global chain. audit_events is untouched, so every chain still verifies (its tick events keep their reasons
-- and verdict summaries; the decision_id they name may no longer exist).
--
-- The three tables stay append-only for everyone else: their triggers now let a DELETE through only while
-- canary.gc runs (a transaction-local setting it turns on and off), and no application role holds DELETE on them.

CREATE FUNCTION canary_append_only_but_gc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('canary.gc', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: rows are immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER measurements_append_only ON measurements;
DROP TRIGGER decisions_append_only ON decisions;
DROP TRIGGER slo_verdicts_append_only ON slo_verdicts;
CREATE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE ON measurements
    FOR EACH ROW EXECUTE FUNCTION canary_append_only_but_gc();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION canary_append_only_but_gc();
CREATE TRIGGER slo_verdicts_append_only BEFORE UPDATE OR DELETE ON slo_verdicts
    FOR EACH ROW EXECUTE FUNCTION canary_append_only_but_gc();

-- Finding the rollouts to collect: ended ones by finish time.
CREATE INDEX rollouts_finished ON rollouts (finished_at) WHERE finished_at IS NOT NULL;

CREATE FUNCTION canary.gc(p_older_than interval, p_max_rollouts integer DEFAULT 1000)
    RETURNS TABLE (rollouts integer, measurements bigint, decisions bigint, verdicts bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ids bigint[];
    n bigint;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '1 day' THEN
        PERFORM canary.refuse('CNIN0', format('gc: --older-than %s is shorter than a day; the rows of recent '
                                               'rollouts are what reports and audits read', p_older_than));
    END IF;
    IF p_max_rollouts IS NULL OR p_max_rollouts < 1 THEN
        PERFORM canary.refuse('CNIN0', format('gc: max rollouts %s is not a positive number', p_max_rollouts));
    END IF;
    SELECT array_agg(r.id) INTO ids FROM (
        SELECT r.id FROM rollouts r
        WHERE r.finished_at < now() - p_older_than
          AND (EXISTS (SELECT 1 FROM decisions d WHERE d.rollout_id = r.id)
               OR EXISTS (SELECT 1 FROM measurements m WHERE m.rollout_id = r.id))
        ORDER BY r.finished_at LIMIT p_max_rollouts) r;
    rollouts := coalesce(array_length(ids, 1), 0);
    measurements := 0;
    decisions := 0;
    verdicts := 0;
    IF rollouts > 0 THEN
        PERFORM set_config('canary.gc', 'on', true);
        DELETE FROM slo_verdicts v USING decisions d WHERE v.decision_id = d.id AND d.rollout_id = ANY (ids);
        GET DIAGNOSTICS n = ROW_COUNT;
        verdicts := n;
        DELETE FROM decisions d WHERE d.rollout_id = ANY (ids);
        GET DIAGNOSTICS n = ROW_COUNT;
        decisions := n;
        DELETE FROM measurements m WHERE m.rollout_id = ANY (ids);
        GET DIAGNOSTICS n = ROW_COUNT;
        measurements := n;
        PERFORM set_config('canary.gc', 'off', true);
        PERFORM canary.audit(NULL, NULL, NULL, 'gc',
                             format('deleted the measurements, decisions and verdicts of %s rollouts that ended '
                                    'more than %s ago', rollouts, p_older_than),
                             jsonb_build_object('older_than', p_older_than::text, 'rollouts', rollouts,
                                                'ids', to_jsonb(ids), 'measurements', measurements,
                                                'decisions', decisions, 'verdicts', verdicts));
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION canary.gc(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.gc(interval, integer) TO canary_operator, canary_controller;
