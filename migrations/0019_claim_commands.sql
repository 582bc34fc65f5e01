-- An operator's command must not wait behind a backlog of due ticks (issue 13: abort -> weight 0 p99 <= 200 ms at
-- every N). canary.claim hands out the most overdue rollouts first, up to p_max, so a daemon that has fallen behind
-- (thousands of rollouts due at once) may not reach a rollout whose abort was just queued for many rounds.
-- canaryd calls canary.claim_commands first after every NOTIFY: it leases the active rollouts that have a command
-- waiting and that are free or already the caller's (never a live replica's: that one got the NOTIFY too), driven
-- by the partial index commands_pending, so its cost does not grow with the number of rollouts. Same shape as
-- canary.claim: the database's clock first, id NULL when nothing was claimed.
CREATE FUNCTION canary.claim_commands(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (now_ms bigint, id bigint, due boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH c AS (
        UPDATE rollouts SET lease_owner = p_owner, lease_until = now() + p_lease_ms * interval '1 ms'
        WHERE rollouts.id IN (
            SELECT r.id FROM rollouts r
            WHERE r.id IN (SELECT cm.rollout_id FROM commands cm WHERE cm.handled_at IS NULL)
              AND r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval')
              AND (r.lease_owner IS NULL OR r.lease_owner = p_owner
                   OR (r.lease_until < now() AND NOT EXISTS (SELECT 1 FROM daemons d
                           WHERE d.owner = r.lease_owner AND d.expires_at > now())))
            ORDER BY r.id LIMIT p_max FOR UPDATE SKIP LOCKED)
        RETURNING rollouts.id, rollouts.next_tick_at <= now() AS due)
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, c.id, c.due
    FROM (SELECT 1) one LEFT JOIN c ON true;
$$;

REVOKE ALL ON FUNCTION canary.claim_commands(text, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.claim_commands(text, bigint, integer) TO canary_controller;
