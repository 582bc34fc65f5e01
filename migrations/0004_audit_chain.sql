-- Tamper-evident audit: every event carries the SHA-256 of the previous event in its chain, over a canonical
-- encoding of the row, so `canaryctl audit verify` can recompute the chain in C and name the first event that was
-- changed or whose predecessor was deleted.
--
-- Chains: one per rollout (rollout_id), plus one global chain for events without a rollout (policy.applied,
-- service.applied), so daemons working on different rollouts never wait for each other. A BEFORE INSERT trigger
-- takes a per-chain advisory transaction lock, then assigns id, at and recorded_by itself, so that chain order is
-- id order, and fills prev_hash and hash. Whatever an application role passes for these columns is overwritten.
--
-- Canonical encoding, version 1 (controller/store/store_audit.c recomputes it byte for byte):
--   hash      = lowercase hex of SHA-256( prev_hash || encoding )
--   prev_hash = the hash of the previous event in the chain (64 hex digits), or 64 '0' for the first event
--   encoding  = "canary.audit.v1\n" followed by these fields in this order, each as
--               "<byte length>:<UTF-8 bytes>\n", or "-\n" for NULL:
--               id, at as whole microseconds since 1970-01-01 UTC, recorded_by, actor, rollout_id, service, kind,
--               reason, data as jsonb's text form (Postgres normalises jsonb, so its text form is canonical)

ALTER TABLE audit_events
    ADD COLUMN recorded_by text,   -- the role that inserted the row (actor may name the operator of a command)
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;

CREATE FUNCTION canary_audit_field(v text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '\x2d0a'::bytea
           ELSE convert_to(octet_length(convert_to(v, 'UTF8'))::text || ':', 'UTF8') || convert_to(v, 'UTF8')
                || '\x0a'::bytea END
$$;

CREATE FUNCTION canary_audit_hash(prev text, id bigint, at timestamptz, recorded_by text, actor text,
                                  rollout_id bigint, service text, kind text, reason text, data jsonb)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(prev, 'UTF8') || convert_to('canary.audit.v1' || chr(10), 'UTF8')
        || canary_audit_field(id::text)
        || canary_audit_field(((extract(epoch FROM at) * 1000000)::bigint)::text)
        || canary_audit_field(recorded_by)
        || canary_audit_field(actor)
        || canary_audit_field(rollout_id::text)
        || canary_audit_field(service)
        || canary_audit_field(kind)
        || canary_audit_field(reason)
        || canary_audit_field(data::text)), 'hex')
$$;

-- Existing rows (from before this migration) are chained in id order. The append-only trigger is off for this.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
DO $$
DECLARE
    r record;
    prev text;
    chain bigint;
    started boolean := false;
BEGIN
    FOR r IN SELECT * FROM audit_events ORDER BY rollout_id, id LOOP
        IF NOT started OR r.rollout_id IS DISTINCT FROM chain THEN
            prev := repeat('0', 64);
            chain := r.rollout_id;
            started := true;
        END IF;
        UPDATE audit_events SET recorded_by = r.actor, prev_hash = prev,
            hash = canary_audit_hash(prev, r.id, r.at, r.actor, r.actor, r.rollout_id, r.service, r.kind, r.reason,
                                     r.data)
            WHERE id = r.id RETURNING hash INTO prev;
    END LOOP;
END
$$;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

ALTER TABLE audit_events
    ALTER COLUMN recorded_by SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
-- A chain cannot fork: each event follows exactly one predecessor (a REPEATABLE READ writer that read a stale head
-- fails here instead of forking the chain).
CREATE UNIQUE INDEX audit_events_chain ON audit_events (coalesce(rollout_id, 0), prev_hash);

CREATE FUNCTION canary_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev text;
BEGIN
    -- "caua": the audit chains' advisory lock class; the key is the chain (0: the global chain). Two rollouts whose
    -- ids collide modulo 2^31 share a lock, which only serialises them.
    PERFORM pg_advisory_xact_lock(1667331425, (coalesce(NEW.rollout_id, 0) % 2147483647)::int);
    -- Under the lock, and in a new snapshot (a volatile function's statement): the head of the chain.
    IF NEW.rollout_id IS NULL THEN
        SELECT e.hash INTO prev FROM audit_events e WHERE e.rollout_id IS NULL ORDER BY e.id DESC LIMIT 1;
    ELSE
        SELECT e.hash INTO prev FROM audit_events e WHERE e.rollout_id = NEW.rollout_id ORDER BY e.id DESC LIMIT 1;
    END IF;
    NEW.id := nextval('audit_events_id_seq');
    NEW.at := clock_timestamp();
    NEW.recorded_by := session_user;
    NEW.actor := coalesce(NEW.actor, session_user);
    NEW.data := coalesce(NEW.data, '{}'::jsonb);
    NEW.prev_hash := coalesce(prev, repeat('0', 64));
    NEW.hash := canary_audit_hash(NEW.prev_hash, NEW.id, NEW.at, NEW.recorded_by, NEW.actor, NEW.rollout_id,
                                  NEW.service, NEW.kind, NEW.reason, NEW.data);
    RETURN NEW;
END
$$;
-- The trigger draws the id; a column default would draw one more and leave a gap at every insert.
ALTER TABLE audit_events ALTER COLUMN id DROP DEFAULT;
CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION canary_audit_chain();

-- Append-only for every application role: no UPDATE, DELETE or TRUNCATE privilege (none was granted; this states
-- it), and triggers that refuse them even to a role that somehow got the privilege.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION canary_refuse_change();
