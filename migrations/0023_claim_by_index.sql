-- A claim that costs what is due, not what the table holds (issue 13). canary.claim (0015) looked for its candidates
-- with one condition over the whole rollouts table, whose finished rows are kept for ever; the planner estimated
-- most rows would pass it and scanned them all: bench/claim_history.sh with 10,000 running and 450,000 finished
-- rollouts, 80-98 ms a claim (with 0022's jit = off; auto_explain: "Seq Scan on rollouts ... Rows Removed by
-- Filter: 459900").
--
-- canary_claim_ids lists the ids that may qualify from three index scans: running rollouts due (rollouts_due), rollouts
-- with a command waiting (commands_pending), ended rollouts whose final weight the gateway has not confirmed (the new
-- partial index rollouts_unsettled). canary_claimable applies 0015's condition, unchanged, to those rows only, found
-- by primary key. canary.claim is 0015's with its two uses of that condition replaced by canary_claimable.

CREATE INDEX rollouts_unsettled ON rollouts (next_tick_at)
    WHERE phase IN ('promoted', 'rolled_back', 'aborted', 'failed') AND applied_weight IS DISTINCT FROM weight;

CREATE FUNCTION canary_claim_ids() RETURNS bigint[]
    LANGUAGE sql STABLE SET search_path = public, pg_temp SET jit = off AS $$
    SELECT coalesce(array_agg(x.id), '{}') FROM (
        SELECT d.id FROM rollouts d
            WHERE d.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND d.next_tick_at <= now()
        UNION
        SELECT c.rollout_id FROM commands c WHERE c.handled_at IS NULL
        UNION
        SELECT u.id FROM rollouts u
            WHERE u.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
              AND u.applied_weight IS DISTINCT FROM u.weight AND u.next_tick_at <= now()) x;
$$;

-- The rollouts p_owner may claim now (0015's condition): due or with a command waiting, and free, its own, or whose
-- lease lapsed.
CREATE FUNCTION canary_claimable(p_owner text)
    RETURNS TABLE (id bigint, next_tick_at timestamptz, lease_owner text)
    LANGUAGE sql STABLE SET search_path = public, pg_temp SET jit = off AS $$
    SELECT r.id, r.next_tick_at, r.lease_owner
    FROM rollouts r
    WHERE r.id = ANY (canary_claim_ids())
      AND ((r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND
            (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c
                WHERE c.rollout_id = r.id AND c.handled_at IS NULL)))
        OR (r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
            AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now()))
      AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now());
$$;
REVOKE ALL ON FUNCTION canary_claim_ids(), canary_claimable(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION canary.claim(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (now_ms bigint, id bigint, due boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
    lease interval := p_lease_ms * interval '1 ms';
    n_live integer;
    n_active integer;
    n_held integer;
    share integer;
    room integer;  -- free rollouts this claim may take; NULL: no limit (the caller is the only live daemon)
    give integer;
BEGIN
    PERFORM canary.daemon_seen(p_owner, p_lease_ms);
    SELECT count(*) INTO n_live FROM daemons WHERE expires_at > now() OR owner = p_owner;
    IF n_live > 1 THEN
        room := 0;
        -- Count only when there is something to claim: most claims find nothing (canaryd claims whenever a
        -- rollout falls due, also another daemon's).
        IF EXISTS (SELECT 1 FROM canary_claimable(p_owner)) THEN
            SELECT count(*), count(*) FILTER (WHERE r.lease_owner = p_owner) INTO n_active, n_held
                FROM rollouts r WHERE r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval');
            share := (n_active + n_live - 1) / n_live;
            room := greatest(share - n_held, 0);
            IF n_held > share THEN
                SELECT coalesce(sum(greatest(share - coalesce(h.n, 0), 0)), 0) INTO give
                    FROM daemons d LEFT JOIN (SELECT r.lease_owner, count(*) AS n FROM rollouts r
                                              WHERE r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval')
                                              GROUP BY 1) h ON h.lease_owner = d.owner
                    WHERE d.expires_at > now() AND d.owner <> p_owner;
                give := least(n_held - share, give);
                IF give > 0 THEN
                    UPDATE rollouts SET lease_owner = NULL, lease_until = NULL
                        WHERE rollouts.id IN (
                            SELECT r.id FROM rollouts r
                            WHERE r.lease_owner = p_owner AND r.next_tick_at <= now()
                              AND r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval')
                              AND r.lease_until - lease < r.next_tick_at -- not claimed since it fell due
                            ORDER BY r.next_tick_at DESC LIMIT give FOR UPDATE SKIP LOCKED);
                    IF FOUND THEN
                        PERFORM pg_notify('canary', 'released:' || p_owner);
                    END IF;
                END IF;
            END IF;
        END IF;
    END IF;

    RETURN QUERY
    WITH cand AS (
        SELECT r.id, r.next_tick_at,
               r.lease_owner IS NOT DISTINCT FROM p_owner AS mine,
               r.lease_owner IS NULL OR NOT EXISTS (SELECT 1 FROM daemons d
                                                    WHERE d.owner = r.lease_owner AND d.expires_at > now()) AS free
        FROM canary_claimable(p_owner) r),
    pick AS (
        SELECT cand.id FROM cand
        WHERE cand.mine OR room IS NULL OR (cand.free AND cand.next_tick_at < now() - lease)
        UNION ALL
        SELECT f.id FROM (SELECT cand.id, row_number() OVER (ORDER BY cand.next_tick_at, cand.id) AS k
                          FROM cand WHERE NOT cand.mine AND cand.free AND cand.next_tick_at >= now() - lease) f
        WHERE f.k <= room),
    c AS (
        UPDATE rollouts SET lease_owner = p_owner, lease_until = now() + lease
        WHERE rollouts.id IN (
            SELECT r.id FROM rollouts r
            WHERE r.id IN (SELECT pick.id FROM pick)
              AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now())
            ORDER BY r.next_tick_at LIMIT p_max FOR UPDATE SKIP LOCKED)
        RETURNING rollouts.id, rollouts.next_tick_at <= now() AS due)
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, c.id, c.due
    FROM (SELECT 1) one LEFT JOIN c ON true;
END
$$;

