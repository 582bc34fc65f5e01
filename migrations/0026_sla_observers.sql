-- Replicas share the SLA ledger's reads (issue 13). Every canaryd's SLA observer read both slots of every service at
-- every minute boundary: three replicas read each page three times a minute, and each held a reader per service
-- (about 13 kB: 135 MB of a daemon's 352 MB at 10,000 services). Observers now register here at each boundary and
-- each service is read by two of them, chosen by rendezvous hashing over the live ones (controller/daemon/
-- sla_observer.c): with one or two observers every one reads every service, as before; when one stops or dies, every
-- service it read still has its other observer, which has its previous reading, so no minute goes unrecorded while
-- the rest take over its share; when one joins, each service it takes keeps one of its two observers.
CREATE TABLE sla_observers (
    owner      text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
REVOKE ALL ON sla_observers FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON sla_observers TO canary_viewer;

-- p_owner is live for p_ttl_ms more (0: it leaves now); returns the live observers, p_owner's row included, in one
-- order for every caller.
CREATE FUNCTION canary.sla_observers(p_owner text, p_ttl_ms bigint) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
BEGIN
    IF coalesce(p_owner, '') = '' OR p_ttl_ms IS NULL OR p_ttl_ms < 0 THEN
        PERFORM canary.refuse('CNIN0', 'sla_observers: an owner and a time to live of 0 ms or more are needed');
    END IF;
    IF p_ttl_ms = 0 THEN
        DELETE FROM sla_observers WHERE owner = p_owner;
    ELSE
        INSERT INTO sla_observers (owner, expires_at) VALUES (p_owner, now() + p_ttl_ms * interval '1 ms')
            ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at;
    END IF;
    DELETE FROM sla_observers WHERE expires_at < now() - interval '1 day';
    RETURN QUERY SELECT o.owner FROM sla_observers o WHERE o.expires_at > now() ORDER BY o.owner COLLATE "C";
END
$$;
REVOKE ALL ON FUNCTION canary.sla_observers(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.sla_observers(text, bigint) TO canary_controller;
