-- A claim that reads the candidate ids once (issue 13). canary_claimable (0023) compared every row with
-- `r.id = ANY (canary_claim_ids())`. As an index condition that call runs once; as a filter it runs once per row.
-- Right after many rollouts were inserted, before autovacuum had analyzed the table (a daemon's first start, a bulk
-- import), the planner knew of no rows, chose a scan with the call as a filter, and a claim with 10,000 rollouts due
-- ran canary_claim_ids (three index scans, 17 ms) 10,000 times: 40 s a claim, and bench/scale.sh 10000 took 100 s
-- to tick every rollout once. A scalar subquery is an InitPlan, computed once for the statement, whatever the plan.
-- The condition is 0023's, unchanged.
CREATE OR REPLACE FUNCTION canary_claimable(p_owner text)
    RETURNS TABLE (id bigint, next_tick_at timestamptz, lease_owner text)
    LANGUAGE sql STABLE SET search_path = public, pg_temp SET jit = off AS $$
    SELECT r.id, r.next_tick_at, r.lease_owner
    FROM rollouts r
    WHERE r.id = ANY ((SELECT canary_claim_ids())::bigint[])
      AND ((r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND
            (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c
                WHERE c.rollout_id = r.id AND c.handled_at IS NULL)))
        OR (r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
            AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now()))
      AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now());
$$;
REVOKE ALL ON FUNCTION canary_claimable(text) FROM PUBLIC;
