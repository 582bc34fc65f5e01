-- Notifications for events that belong to no rollout (issue 14, item 3): a failover drill's start and result, and an
-- SLA window missed; and the ledger's automatic retention.
--
-- 0006 hands every audit event to canary.notify_outbox, which gave up on events without a rollout. Here it learns
-- three more audit kinds, so the outbox row is still written by the same transaction as the change:
--   drill.started (canary.drill_insert)         -> drill_started
--   drill.ended   (canary.drill_record)         -> drill_passed | drill_cut_short | drill_aborted | drill_failed,
--                                                  with the drill's figures (time to shift, errors and p99 during the
--                                                  shift and the hold, time to shift back)
--   sla.window_missed (canary.sla_window_missed) -> sla_window_missed
-- Their webhooks are the service's `notify:` (a drill's pinned service version; for an SLA window the version whose
-- contract judged it). Their stream is (service, URL) with no rollout (canary.outbox_claim from 0006): in order per
-- service, apart from the rollouts' streams.
--
-- SLA windows: canaryd judges a window with the core (the same arithmetic as `canaryctl sla report`) in the
-- transaction that records the minute closing it (canary.sla_record, then canary.sla_window_missed, one commit), so
-- the miss is recorded with its minute or not at all. sla_window_misses makes it once per (service, contract,
-- objective, window): a second daemon, a restart or a replay tells nobody twice.

CREATE TABLE sla_window_misses (
    service      text NOT NULL REFERENCES services (name),
    contract     text NOT NULL,
    objective    text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    data         jsonb NOT NULL,
    PRIMARY KEY (service, contract, objective, window_start),
    CHECK (window_end > window_start)
);
REVOKE ALL ON sla_window_misses FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON sla_window_misses TO canary_viewer;

-- The notification event an audit event is, or NULL (0006's rollout events, and the service's own).
CREATE OR REPLACE FUNCTION canary.notify_event(p_kind text, p_data jsonb, p_phase text) RETURNS text
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
        WHEN p_kind = 'drill.started' THEN 'drill_started'
        WHEN p_kind = 'drill.ended' AND p_data->>'outcome' IN ('passed', 'cut_short', 'aborted', 'failed')
            THEN 'drill_' || (p_data->>'outcome')
        WHEN p_kind = 'sla.window_missed' THEN 'sla_window_missed'
        END
$$;

-- Outbox rows for an audit event without a rollout: one per webhook of the service version sv that wants event ev.
CREATE FUNCTION canary.notify_outbox_service(e audit_events, ev text, sv bigint, doc jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    h record;
    n integer := 0;
BEGIN
    FOR h IN
        SELECT DISTINCT ON (t.hk->>'url') t.hk->>'url' AS url, (t.i - 1)::integer AS idx
            FROM service_versions v, jsonb_array_elements(coalesce(v.spec->'notify', '[]')) WITH ORDINALITY AS t(hk, i)
            WHERE v.id = sv AND t.hk->'events' ? ev
            ORDER BY t.hk->>'url', t.i
    LOOP
        INSERT INTO outbox (audit_id, rollout_id, service, event, url, policy_id, service_version_id, hook, payload)
            VALUES (e.id, NULL, e.service, ev, h.url, NULL, sv, h.idx, doc);
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        PERFORM pg_notify('canary_outbox', '');
    END IF;
    RETURN n;
END
$$;

-- 0006's canary.notify_outbox, and for events without a rollout: drills and SLA windows.
CREATE OR REPLACE FUNCTION canary.notify_outbox(e audit_events) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    h record;
    d record;
    ev text;
    doc jsonb;
    n integer := 0;
BEGIN
    IF e.rollout_id IS NULL THEN
        ev := canary.notify_event(e.kind, e.data, NULL);
        IF ev IS NULL OR e.service IS NULL THEN
            RETURN 0;
        END IF;
        doc := jsonb_build_object('event', ev, 'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                  'service', e.service, 'actor', e.actor, 'reason', e.reason, 'audit_id', e.id);
        IF ev LIKE 'drill\_%' THEN
            SELECT dr.*, v.spec->'slots'->dr.primary_slot->>'name' AS primary_name,
                   v.spec->'slots'->dr.secondary_slot->>'name' AS secondary_name, p.name AS policy_name
                INTO d FROM drills dr JOIN service_versions v ON v.id = dr.service_version_id
                JOIN policies p ON p.id = dr.policy_id WHERE dr.id = (e.data->>'drill')::bigint;
            IF NOT FOUND THEN
                RETURN 0;
            END IF;
            doc := doc || jsonb_build_object('drill', jsonb_build_object(
                'id', d.id, 'primary', d.primary_name, 'secondary', d.secondary_name, 'policy', d.policy_name,
                'hold_ms', d.hold_ms, 'scheduled', d.scheduled, 'outcome', e.data->>'outcome',
                'figures', e.data->'figures'));
            RETURN canary.notify_outbox_service(e, ev, d.service_version_id, doc);
        END IF;
        doc := doc || jsonb_build_object('sla', e.data - 'service_version');
        RETURN canary.notify_outbox_service(e, ev, (e.data->>'service_version')::bigint, doc);
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
        PERFORM pg_notify('canary_outbox', '');
    END IF;
    RETURN n;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The controller (canaryd)

-- Records that a window of p_service missed an objective of its contract (judged by canaryd in the transaction that
-- recorded the window's last minute). p_miss: contract, objective, metric, window_start, window_end (ISO times),
-- state ('missed', or 'no data' under no_data: miss), value, limit, total, bad, nodata_minutes, service_version
-- (the version whose contract judged it). Once per (service, contract, objective, window): audited as
-- sla.window_missed (whose outbox rows the service's webhooks get) the first time; returns whether it was new.
CREATE FUNCTION canary.sla_window_missed(p_service text, p_miss jsonb) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ws timestamptz;
    we timestamptz;
    sv bigint;
BEGIN
    BEGIN
        ws := (p_miss->>'window_start')::timestamptz;
        we := (p_miss->>'window_end')::timestamptz;
        sv := (p_miss->>'service_version')::bigint;
    EXCEPTION WHEN OTHERS THEN
        PERFORM canary.refuse('CNIN0', format('sla: service %s: window_start, window_end or service_version is '
                                              'not readable in %s', p_service, left(p_miss::text, 200)));
    END;
    IF ws IS NULL OR we IS NULL OR we <= ws OR we > clock_timestamp() + interval '1 minute'
       OR coalesce(p_miss->>'contract', '') = '' OR coalesce(p_miss->>'objective', '') = ''
       OR length(p_miss::text) > 4000 THEN
        PERFORM canary.refuse('CNIN0', format('sla: service %s: a missed window needs contract, objective and a '
                                              'window that has ended (%s .. %s)', p_service, ws, we));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM service_versions WHERE id = sv AND service = p_service) THEN
        PERFORM canary.refuse('CNIN0', format('sla: service %s has no version id %s', p_service, sv));
    END IF;
    INSERT INTO sla_window_misses (service, contract, objective, window_start, window_end, data)
        VALUES (p_service, p_miss->>'contract', p_miss->>'objective', ws, we, p_miss)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM canary.audit(NULL, p_service, NULL, 'sla.window_missed',
                         format('%s: %s %s', p_miss->>'contract', p_miss->>'objective', p_miss->>'state'), p_miss);
    RETURN true;
END
$$;

-- Automatic retention of the ledger (canaryd --sla-retention DAYS): deletes at most p_max_rows minutes (of every
-- service) older than p_keep_days, never from the current month (UTC), oldest first, and the missed windows that
-- ended before the same cut. Audited (sla.retention) when something went. Returns how many minutes went; a caller
-- that got p_max_rows calls again.
CREATE FUNCTION canary.sla_retain(p_keep_days integer, p_max_rows integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cut timestamptz;
    n bigint;
    nm bigint;
BEGIN
    IF p_keep_days IS NULL OR p_keep_days < 1 OR p_keep_days > 36600 THEN
        PERFORM canary.refuse('CNIN0', format('sla retention: keep %s days; it must be 1 .. 36600', p_keep_days));
    END IF;
    IF p_max_rows IS NULL OR p_max_rows < 1 OR p_max_rows > 100000 THEN
        PERFORM canary.refuse('CNIN0', format('sla retention: %s rows per call; it must be 1 .. 100000', p_max_rows));
    END IF;
    cut := least(clock_timestamp() - p_keep_days * interval '1 day',
                 date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');
    DELETE FROM sla_minutes WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM sla_minutes WHERE minute < cut ORDER BY minute LIMIT p_max_rows));
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM sla_window_misses WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM sla_window_misses WHERE window_end <= cut ORDER BY window_end LIMIT p_max_rows));
    GET DIAGNOSTICS nm = ROW_COUNT;
    IF n > 0 OR nm > 0 THEN
        PERFORM canary.audit(NULL, NULL, NULL, 'sla.retention', format('keep %s days', p_keep_days),
                             jsonb_build_object('before', cut, 'rows', n, 'missed_windows', nm,
                                                'keep_days', p_keep_days));
    END IF;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION canary.notify_outbox_service(audit_events, text, bigint, jsonb),
    canary.sla_window_missed(text, jsonb), canary.sla_retain(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.sla_window_missed(text, jsonb), canary.sla_retain(integer, integer)
    TO canary_controller;
