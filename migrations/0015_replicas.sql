-- Replicas share the work (issue 13, item 3). Any number of canaryd may run against one database; until now the
-- first to claim took every due rollout (up to 256 a round) and kept them all, since a claim renews its own leases.
--
-- daemons: the live daemons, one row per lease owner. Every claim refreshes its caller's row (at most once a second,
-- as a claim may run many times a second), and so does canary.heartbeat during a long round; the row stays live for
-- one lease after that; release_leases (SIGTERM) takes it out at once. Only these functions write it; viewers read.
--
-- canary.claim (the same signature, so canaryd calls it unchanged) now hands out work by shares. With `live` daemons
-- and `active` unfinished rollouts, a daemon's share is ceil(active / live); among the due rollouts it may lease
-- (the lease checks are the same as before) it takes
--   * its own: a rollout stays with its owner while the owner lives (no lease moves in a steady state);
--   * free ones (no owner, or an owner whose registry row has lapsed: it died) only up to its share;
--   * free ones due for more than a lease, past its share: the safety net that leaves no work unowned whatever the
--     counts say.
-- A live daemon's rollouts stay its own even when their leases lapse (it runs late): it claims its oldest due first
-- and gets to them, and handing them to another daemon, as loaded, would only move work back and forth (under
-- overload at N = 1,000 on 2 cores that moved half the rollouts within a minute).
-- A daemon holding more than its share (another joined, or rollouts ended elsewhere) gives back some of its due
-- rollouts: only ones it has not claimed since they fell due (no read of its own in flight), at most its excess and
-- at most the room the other live daemons have below their shares, so a lease moves once and never back and forth;
-- a NOTIFY wakes the others to take them at once.
-- With lease L and poll P: a SIGKILLed daemon's rollouts become free when its row lapses (at most L after its last
-- claim) and the others, whose shares then grow, take them at their next claim (about L + P after the kill); one
-- daemon alone has a share of everything. Every write still checks the lease (canary.leased, renew_lease,
-- confirm_weight), so a hand-over can cost a read, never a double step.

CREATE TABLE daemons (
    owner      text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
REVOKE ALL ON daemons FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON daemons TO canary_viewer;

-- Who holds what: counting a daemon's rollouts by lease_owner among the unfinished ones.
CREATE INDEX rollouts_lease_owner ON rollouts (lease_owner)
    WHERE phase IN ('pending', 'progressing', 'paused', 'awaiting_approval');

-- Marks p_owner live for p_lease_ms from now; writes at most once a second per daemon (not granted to anyone).
CREATE FUNCTION canary.daemon_seen(p_owner text, p_lease_ms bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lease interval := p_lease_ms * interval '1 ms';
BEGIN
    UPDATE daemons SET seen_at = now(), expires_at = now() + lease
        WHERE owner = p_owner AND (expires_at < now() + lease - interval '1 s' OR expires_at > now() + lease);
    IF NOT FOUND THEN
        INSERT INTO daemons (owner, seen_at, expires_at) VALUES (p_owner, now(), now() + lease)
            ON CONFLICT (owner) DO NOTHING;
        IF FOUND THEN -- a daemon new to the registry: forget the ones gone for a day
            DELETE FROM daemons WHERE expires_at < now() - interval '1 day';
        END IF;
    END IF;
END
$$;

-- canaryd's heartbeat between claims: a round of hundreds of turns or ticks on a loaded machine can outlast a
-- lease, and a daemon that works must not be taken for dead (the others would take its rollouts, and it would take
-- them back). It comes from the loop that does the work, not from a thread of its own, so a hung loop still lapses.
CREATE FUNCTION canary.heartbeat(p_owner text, p_lease_ms bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT canary.daemon_seen(p_owner, p_lease_ms);
$$;

-- Claims up to p_max due rollouts for p_owner within its share (see above). Always returns at least one row: the
-- first column is the database's clock (ms since the epoch), the one clock every daemon's core runs on; id is NULL
-- when nothing was claimed.
CREATE OR REPLACE FUNCTION canary.claim(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (now_ms bigint, id bigint, due boolean)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
        IF EXISTS (SELECT 1 FROM rollouts r
                   WHERE ((r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND
                           (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c
                               WHERE c.rollout_id = r.id AND c.handled_at IS NULL)))
                       OR (r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
                           AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now()))
                     AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now())) THEN
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
        FROM rollouts r
        WHERE ((r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') AND
                (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c
                    WHERE c.rollout_id = r.id AND c.handled_at IS NULL)))
            OR (r.phase IN ('promoted', 'rolled_back', 'aborted', 'failed')
                AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now()))
          AND (r.lease_owner IS NULL OR r.lease_owner = p_owner OR r.lease_until < now())),
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

-- A daemon that stops (SIGTERM) gives its rollouts back and leaves the registry, so the others' shares grow at once;
-- the NOTIFY wakes them to take what is due.
CREATE OR REPLACE FUNCTION canary.release_leases(p_owner text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE rollouts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = p_owner;
    DELETE FROM daemons WHERE owner = p_owner;
    PERFORM pg_notify('canary', 'released:' || p_owner);
END
$$;

REVOKE ALL ON FUNCTION canary.daemon_seen(text, bigint), canary.heartbeat(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.heartbeat(text, bigint) TO canary_controller;
