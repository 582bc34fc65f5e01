-- Webhook notifications, never lost: an outbox written in the same transaction as the change it tells about, and
-- delivered at least once by the daemons.
--
-- Every audited change goes through canary.audit; this migration makes canary.audit hand each new audit event to
-- canary.notify_outbox, which maps it to a notification event (started, step_advanced, awaiting_approval, paused,
-- resumed, promoted, rolled_back, aborted, failed; most audit events are none) and, for each webhook of the
-- rollout's pinned policy version and service version that wants that event, inserts one outbox row. So a change is
-- committed with its notifications or not at all, and no function that changes state has to remember to notify.
--
-- Delivery (canaryd): canary.outbox_claim leases the rows that are due and first in their stream (one stream per
-- rollout and URL: row N+1 is not handed out while row N is undelivered), FOR UPDATE SKIP LOCKED so any number of
-- daemons share the work; canary.outbox_result records a delivery or a failed attempt with the next attempt's time.
-- Each row carries its own idempotency key (key, a uuid). The rows are append-only for every application role: they
-- hold SELECT only, and a trigger refuses any change but the delivery columns, and any DELETE or TRUNCATE.

CREATE TABLE outbox (
    id                 bigserial PRIMARY KEY,
    key                uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE, -- Idempotency-Key of every attempt
    audit_id           bigint NOT NULL REFERENCES audit_events (id),  -- the audited change it tells about
    rollout_id         bigint REFERENCES rollouts (id),
    service            text NOT NULL,
    event              text NOT NULL,
    url                text NOT NULL,
    policy_id          bigint REFERENCES policies (id),                -- the webhook's source: a policy version ...
    service_version_id bigint REFERENCES service_versions (id),        -- ... or a service version
    hook               integer NOT NULL,                               -- its index in that version's notify list
    payload            jsonb NOT NULL,                                 -- the event document (without the key)
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_by         text,
    claimed_until      timestamptz,
    delivered_at       timestamptz,
    last_status        integer,                                        -- the receiver's HTTP status, 0: none
    last_error         text,
    CHECK ((policy_id IS NULL) <> (service_version_id IS NULL))
);
-- The streams' heads and the backlog: undelivered rows only.
CREATE INDEX outbox_undelivered ON outbox (service, url, rollout_id, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

CREATE FUNCTION canary_outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.key, NEW.audit_id, NEW.rollout_id, NEW.service, NEW.event, NEW.url, NEW.policy_id,
        NEW.service_version_id, NEW.hook, NEW.payload, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.key, OLD.audit_id, OLD.rollout_id, OLD.service, OLD.event, OLD.url,
        OLD.policy_id, OLD.service_version_id, OLD.hook, OLD.payload, OLD.created_at)
       OR (OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS DISTINCT FROM OLD.delivered_at) THEN
        RAISE EXCEPTION 'UPDATE on outbox may change only the delivery of an undelivered row'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER outbox_guard BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION canary_outbox_guard();
CREATE TRIGGER outbox_append_only BEFORE DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON outbox FOR EACH STATEMENT EXECUTE FUNCTION canary_refuse_change();

REVOKE ALL ON outbox FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
REVOKE ALL ON SEQUENCE outbox_id_seq FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON outbox TO canary_viewer;

-- ---------------------------------------------------------------------------------------------------------------
-- Shared pieces (not granted to anyone)

-- The notification event an audit event is, or NULL. p_phase is the rollout's phase after the change (the row is
-- updated before its events are audited).
CREATE FUNCTION canary.notify_event(p_kind text, p_data jsonb, p_phase text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN p_kind = 'rollout.started' THEN 'started'
        WHEN p_kind = 'state.changed' THEN CASE
            WHEN p_data->>'to' IN ('promoted', 'rolled_back', 'aborted', 'failed', 'paused', 'awaiting_approval')
                 AND NOT (p_data->>'from' = 'paused' AND p_data->>'to' = 'awaiting_approval')
                THEN p_data->>'to'
            WHEN p_data->>'from' = 'paused' THEN 'resumed'
            END
        WHEN p_kind = 'weight.intended' AND (p_data->>'to')::double precision > (p_data->>'from')::double precision
             AND p_phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') THEN 'step_advanced'
        END
$$;

-- One outbox row per webhook that wants the event audit event e is (none when it is no event). Hooks come from the
-- rollout's pinned policy version and service version; a URL named by both gets one row (the policy's hook).
CREATE FUNCTION canary.notify_outbox(e audit_events) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    h record;
    ev text;
    doc jsonb;
    n integer := 0;
BEGIN
    IF e.rollout_id IS NULL THEN
        RETURN 0; -- (no event without a rollout yet)
    END IF;
    SELECT ro.*, p.name AS policy_name, p.version AS policy_version,
           coalesce(jsonb_array_length(p.spec->'steps'), 0) AS nsteps,
           p.spec->'notify' AS policy_hooks, v.spec->'notify' AS service_hooks
        INTO r FROM rollouts ro JOIN policies p ON p.id = ro.policy_id
        JOIN service_versions v ON v.id = ro.service_version_id WHERE ro.id = e.rollout_id;
    IF NOT FOUND OR (r.policy_hooks IS NULL AND r.service_hooks IS NULL) THEN
        RETURN 0;
    END IF;
    ev := canary.notify_event(e.kind, e.data, r.phase);
    IF ev IS NULL THEN
        RETURN 0;
    END IF;
    doc := jsonb_build_object(
        'event', ev, 'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'service', r.service, 'actor', e.actor, 'reason', e.reason, 'audit_id', e.id,
        'rollout', jsonb_build_object('id', r.id, 'candidate', r.candidate, 'baseline', r.baseline,
                                      'phase', r.phase, 'step', r.step + 1, 'steps', r.nsteps, 'weight', r.weight,
                                      'policy', r.policy_name, 'policy_version', r.policy_version));
    FOR h IN
        SELECT DISTINCT ON (x.url) x.url, x.pid, x.svid, x.idx FROM (
            SELECT t.hk->>'url' AS url, 0 AS src, r.policy_id AS pid, NULL::bigint AS svid, (t.i - 1)::integer AS idx
                FROM jsonb_array_elements(coalesce(r.policy_hooks, '[]')) WITH ORDINALITY AS t(hk, i)
                WHERE t.hk->'events' ? ev
            UNION ALL
            SELECT t.hk->>'url', 1, NULL, r.service_version_id, (t.i - 1)::integer
                FROM jsonb_array_elements(coalesce(r.service_hooks, '[]')) WITH ORDINALITY AS t(hk, i)
                WHERE t.hk->'events' ? ev) x
        ORDER BY x.url, x.src
    LOOP
        INSERT INTO outbox (audit_id, rollout_id, service, event, url, policy_id, service_version_id, hook, payload)
            VALUES (e.id, e.rollout_id, r.service, ev, h.url, h.pid, h.svid, h.idx, doc);
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        PERFORM pg_notify('canary_outbox', ''); -- delivered at commit, coalesced per transaction
    END IF;
    RETURN n;
END
$$;

-- canary.audit as in 0005, and every event it writes goes through canary.notify_outbox in the same transaction.
CREATE OR REPLACE FUNCTION canary.audit(p_rollout bigint, p_service text, p_actor text, p_kind text, p_reason text,
                                        p_data jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    e audit_events;
BEGIN
    INSERT INTO audit_events (rollout_id, service, actor, kind, reason, data)
        VALUES (p_rollout, p_service, coalesce(p_actor, session_user), p_kind, p_reason, coalesce(p_data, '{}'))
        RETURNING * INTO e;
    PERFORM canary.notify_outbox(e);
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The controller (canaryd)

-- Leases up to p_max notifications to p_owner for p_lease_ms: those due and undelivered whose stream (rollout and
-- URL) has no earlier undelivered row, oldest first. Returns each with its webhook's source text (the policy or
-- service version's YAML: canaryd reads the hook, and an inline secret, from it) and the hook's index there.
CREATE FUNCTION canary.outbox_claim(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (id bigint, key uuid, event text, url text, attempts integer, created_us bigint, payload jsonb,
                   hook integer, source_kind text, source text)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH c AS (
        UPDATE outbox SET claimed_by = p_owner,
            claimed_until = clock_timestamp() + least(greatest(p_lease_ms, 1000), 600000) * interval '1 ms'
        WHERE outbox.id IN (
            SELECT o.id FROM outbox o
            WHERE o.delivered_at IS NULL AND o.next_attempt_at <= clock_timestamp()
              AND (o.claimed_until IS NULL OR o.claimed_until < clock_timestamp())
              AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.delivered_at IS NULL AND x.service = o.service
                                  AND x.url = o.url AND x.rollout_id IS NOT DISTINCT FROM o.rollout_id
                                  AND x.id < o.id)
            ORDER BY o.id LIMIT least(greatest(p_max, 0), 1000) FOR UPDATE SKIP LOCKED)
        RETURNING outbox.*)
    SELECT c.id, c.key, c.event, c.url, c.attempts, (extract(epoch FROM c.created_at) * 1000000)::bigint,
           c.payload, c.hook, CASE WHEN c.policy_id IS NOT NULL THEN 'policy' ELSE 'service' END,
           coalesce(p.source, v.source)
    FROM c LEFT JOIN policies p ON p.id = c.policy_id LEFT JOIN service_versions v ON v.id = c.service_version_id
    ORDER BY c.id;
$$;

-- Records one attempt at row p_id: delivered (any daemon may say so: the receiver has it), or failed with the
-- receiver's status (0: no answer) and error, to be tried again in p_retry_ms (only by the daemon holding the
-- lease; a late failure after another daemon took over changes nothing). Returns whether the row changed.
CREATE FUNCTION canary.outbox_result(p_id bigint, p_owner text, p_delivered boolean, p_status integer,
                                     p_error text, p_retry_ms bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_delivered THEN
        UPDATE outbox SET delivered_at = clock_timestamp(), attempts = attempts + 1, last_status = p_status,
            last_error = NULL, claimed_by = NULL, claimed_until = NULL
            WHERE id = p_id AND delivered_at IS NULL;
    ELSE
        UPDATE outbox SET attempts = attempts + 1, last_status = p_status, last_error = left(p_error, 500),
            next_attempt_at = clock_timestamp() + least(greatest(p_retry_ms, 0), 3600000) * interval '1 ms',
            claimed_by = NULL, claimed_until = NULL
            WHERE id = p_id AND delivered_at IS NULL AND claimed_by = p_owner;
    END IF;
    RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION canary.notify_event(text, jsonb, text), canary.notify_outbox(audit_events),
    canary.outbox_claim(text, bigint, integer),
    canary.outbox_result(bigint, text, boolean, integer, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.outbox_claim(text, bigint, integer),
    canary.outbox_result(bigint, text, boolean, integer, text, bigint) TO canary_controller;
