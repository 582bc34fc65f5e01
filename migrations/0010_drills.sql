-- Failover drills (issue 12, item 5): shift all of a service's traffic to its warm secondary slot, hold while its
-- SLOs are judged, shift back. A drill is a row of its own (not a kind of rollout: it never changes the live slot,
-- and its outcomes are passed / cut_short / aborted / failed), driven by canaryd with leases as rollouts are:
-- the intended share of the secondary (`weight`) is committed before the gateway is called, and the gateway is
-- reconciled to it on every turn, so a drill whose daemon died is restored to the primary by the next one.
--
-- Exclusion with rollouts is enforced here, not only in canaryctl: canary.start_drill and canary.start_rollout
-- (0005) both lock the service's row before they look for the other, and a trigger on rollouts refuses an insert
-- while a drill of the service is active; so of a concurrent `rollout start` and `drill failover` exactly one wins.
--
-- Audit: drill events go to the hash-chained audit_events in the global chain (rollout_id NULL, as policy and service
-- applications do), with the drill's id in data->>'drill'; `canaryctl audit verify` checks them with the rest.

CREATE TABLE drills (
    id                 bigserial PRIMARY KEY,
    service            text NOT NULL REFERENCES services (name),
    service_version_id bigint NOT NULL REFERENCES service_versions (id),
    policy_id          bigint NOT NULL REFERENCES policies (id),   -- whose SLOs judge the secondary
    primary_slot       smallint NOT NULL CHECK (primary_slot IN (0, 1)),
    secondary_slot     smallint NOT NULL CHECK (secondary_slot IN (0, 1)),
    hold_ms            bigint NOT NULL CHECK (hold_ms BETWEEN 1000 AND 86400000),
    baseline_ms        bigint NOT NULL CHECK (baseline_ms BETWEEN 1000 AND 3600000),
    phase              text NOT NULL DEFAULT 'pending' CHECK (phase IN ('pending', 'baseline', 'shifting', 'holding',
                           'restoring', 'passed', 'cut_short', 'aborted', 'failed')),
    outcome            text CHECK (outcome IN ('passed', 'cut_short', 'aborted', 'failed')),
    weight             double precision NOT NULL DEFAULT 0,  -- intended share of the secondary, before the gateway
    applied_weight     double precision,                      -- the share the gateway last confirmed
    reason             text,
    figures            jsonb,                                 -- timings and numbers per window (canaryd)
    status             jsonb,                                 -- the last tick's verdicts
    scheduled          boolean NOT NULL DEFAULT false,        -- started by canaryd from the service's drill.every
    abort_requested_at timestamptz,
    abort_requested_by text,
    abort_reason       text CHECK (length(abort_reason) <= 500),
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by         text NOT NULL DEFAULT session_user,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at        timestamptz,
    next_tick_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner        text,
    lease_until        timestamptz,
    CHECK (primary_slot <> secondary_slot)
);
CREATE UNIQUE INDEX drills_one_active ON drills (service)
    WHERE phase IN ('pending', 'baseline', 'shifting', 'holding', 'restoring');
CREATE INDEX drills_service ON drills (service, id);

-- One row per tick of a drill: what the report draws.
CREATE TABLE drill_ticks (
    id       bigserial PRIMARY KEY,
    drill_id bigint NOT NULL REFERENCES drills (id),
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    phase    text NOT NULL,
    weight   double precision NOT NULL,
    data     jsonb NOT NULL
);
CREATE INDEX drill_ticks_drill ON drill_ticks (drill_id, id);
CREATE TRIGGER drill_ticks_append_only BEFORE UPDATE OR DELETE ON drill_ticks
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();

REVOKE ALL ON drills, drill_ticks FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
REVOKE ALL ON SEQUENCE drills_id_seq, drill_ticks_id_seq FROM PUBLIC, canary_viewer, canary_operator,
    canary_controller;
GRANT SELECT ON drills, drill_ticks TO canary_viewer;

-- ---------------------------------------------------------------------------------------------------------------
-- Shared pieces (not granted to anyone)

-- Phases in which a drill holds its service (and traffic may be on the secondary).
CREATE FUNCTION canary.drill_active(p_phase text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT p_phase IN ('pending', 'baseline', 'shifting', 'holding', 'restoring')
$$;

-- A rollout may not start while a drill of its service is active. canary.start_rollout has locked the service row
-- (FOR UPDATE OF s) before it inserts, as canary.start_drill does before it looks for rollouts.
CREATE FUNCTION canary_rollout_drill_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    did bigint;
BEGIN
    PERFORM 1 FROM services WHERE name = NEW.service FOR UPDATE;
    SELECT d.id INTO did FROM drills d WHERE d.service = NEW.service AND canary.drill_active(d.phase) LIMIT 1;
    IF FOUND THEN
        PERFORM canary.refuse('CNIN0', format('service ''%s'' has a failover drill running (drill %s); wait for it '
                                               'or abort it with ''canaryctl drill abort %s''', NEW.service, did,
                                               did));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER rollouts_drill_guard BEFORE INSERT ON rollouts
    FOR EACH ROW EXECUTE FUNCTION canary_rollout_drill_guard();

-- The body of canary.start_drill and of the scheduled start (who may call it is decided by its callers).
CREATE FUNCTION canary.drill_insert(p_service text, p_to text, p_policy text, p_hold_ms bigint,
                                    p_baseline_ms bigint, p_reason text, p_scheduled boolean) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    svc record;
    pid bigint;
    sec smallint;
    rid bigint;
    did bigint;
    i integer;
BEGIN
    IF length(p_reason) > 500 THEN
        PERFORM canary.refuse('CNIN0', format('the reason is %s characters long; the limit is 500',
                                               length(p_reason)));
    END IF;
    IF p_hold_ms IS NULL OR p_hold_ms NOT BETWEEN 1000 AND 86400000 THEN
        PERFORM canary.refuse('CNIN0', format('the hold is %s ms; it must be 1s to 24h', p_hold_ms));
    END IF;
    IF p_baseline_ms IS NULL OR p_baseline_ms NOT BETWEEN 1000 AND 3600000 THEN
        PERFORM canary.refuse('CNIN0', format('the baseline is %s ms; it must be 1s to 1h', p_baseline_ms));
    END IF;
    -- The service row is locked first, as canary.start_rollout does: one of a concurrent rollout and drill waits.
    SELECT s.live_slot, v.id AS version_id, v.spec INTO svc
        FROM services s JOIN service_versions v ON v.service = s.name
        WHERE s.name = p_service ORDER BY v.version DESC LIMIT 1 FOR UPDATE OF s;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('unknown service ''%s''; apply it first with '
                                               '''canaryctl service apply FILE''', p_service));
    END IF;
    SELECT id INTO pid FROM policies WHERE name = p_policy ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('unknown policy ''%s''; apply it first with '
                                               '''canaryctl policy apply FILE''', p_policy));
    END IF;
    IF p_to IS NULL THEN
        sec := 1 - svc.live_slot;
    ELSE
        FOR i IN 0..1 LOOP
            IF svc.spec->'slots'->i->>'name' = p_to OR svc.spec->'slots'->i->>'server' = p_to THEN
                sec := i;
            END IF;
        END LOOP;
        IF sec IS NULL THEN
            PERFORM canary.refuse('CNIN0', format('service ''%s'' has no slot or server ''%s''; --to names its '
                                                   'secondary (%s or %s)', p_service, p_to,
                                                   svc.spec->'slots'->0->>'name', svc.spec->'slots'->1->>'name'));
        END IF;
        IF sec = svc.live_slot THEN
            PERFORM canary.refuse('CNIN0', format('''%s'' is the live slot of service ''%s''; a drill moves '
                                                   'traffic to the other one', p_to, p_service));
        END IF;
    END IF;
    SELECT r.id INTO rid FROM rollouts r WHERE r.service = p_service
        AND r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') LIMIT 1;
    IF FOUND THEN
        PERFORM canary.refuse('CNIN0', format('service ''%s'' has an active rollout (%s); a drill never runs '
                                               'during a rollout: wait for it', p_service, rid));
    END IF;
    BEGIN
        INSERT INTO drills (service, service_version_id, policy_id, primary_slot, secondary_slot, hold_ms,
                            baseline_ms, reason, scheduled, created_by)
            VALUES (p_service, svc.version_id, pid, svc.live_slot, sec, p_hold_ms, p_baseline_ms, p_reason,
                    p_scheduled, session_user)
            RETURNING id INTO did;
    EXCEPTION WHEN unique_violation THEN
        PERFORM canary.refuse('CNIN0', format('service ''%s'' already has a drill running; wait for it or abort '
                                               'it with ''canaryctl drill abort ID''', p_service));
    END;
    PERFORM canary.audit(NULL, p_service, NULL, 'drill.started', p_reason,
                         jsonb_build_object('drill', did, 'primary', svc.spec->'slots'->svc.live_slot->>'name',
                                            'secondary', svc.spec->'slots'->sec->>'name', 'policy', p_policy,
                                            'hold_ms', p_hold_ms, 'baseline_ms', p_baseline_ms,
                                            'scheduled', p_scheduled));
    PERFORM pg_notify('canary', 'drill:' || did);
    RETURN did;
END
$$;

-- The lease check every daemon write on a drill starts with: locks the row; returns it.
CREATE FUNCTION canary.drill_leased(p_id bigint, p_owner text) RETURNS drills
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d drills;
BEGIN
    SELECT * INTO d FROM drills WHERE id = p_id AND lease_owner = p_owner AND lease_until > now() FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('drill %s: lease lost to another daemon; skipping this turn', p_id));
    END IF;
    RETURN d;
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Operators

-- Starts a failover drill of p_service to p_to (a slot or server name; NULL: the idle slot), judged by the SLOs of
-- the latest version of p_policy. Refused while a rollout or another drill of the service is active.
CREATE FUNCTION canary.start_drill(p_service text, p_to text, p_policy text, p_hold_ms bigint, p_baseline_ms bigint,
                                   p_reason text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT canary.drill_insert(p_service, p_to, p_policy, p_hold_ms, p_baseline_ms, p_reason, false);
$$;

-- Asks the owning daemon to end a drill now and restore the primary (it NOTIFYs).
CREATE FUNCTION canary.abort_drill(p_id bigint, p_reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d drills;
BEGIN
    IF length(p_reason) > 500 THEN
        PERFORM canary.refuse('CNIN0', format('the reason is %s characters long; the limit is 500',
                                               length(p_reason)));
    END IF;
    SELECT * INTO d FROM drills WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNIN0', format('no drill with id %s; ''canaryctl drill status'' lists them', p_id));
    END IF;
    IF NOT canary.drill_active(d.phase) THEN
        PERFORM canary.refuse('CNIN0', format('drill %s has ended (%s); nothing to abort', p_id, d.phase));
    END IF;
    IF d.abort_requested_at IS NOT NULL THEN
        RETURN; -- asked already; the first request's actor stands
    END IF;
    UPDATE drills SET abort_requested_at = clock_timestamp(), abort_requested_by = session_user,
        abort_reason = p_reason, next_tick_at = clock_timestamp() WHERE id = p_id;
    PERFORM canary.audit(NULL, d.service, NULL, 'drill.abort_requested', p_reason,
                         jsonb_build_object('drill', p_id, 'phase', d.phase));
    PERFORM pg_notify('canary', 'drill:' || p_id);
END
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- The controller (canaryd)

-- Claims up to p_max active drills that are due (or have an abort request) for p_owner. Always one row at least:
-- the database's clock (ms since the epoch); id NULL when nothing was due. fresh: the lease was not p_owner's.
CREATE FUNCTION canary.drill_claim(p_owner text, p_lease_ms bigint, p_max integer)
    RETURNS TABLE (now_ms bigint, id bigint, fresh boolean)
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH due AS (
        SELECT d.id, d.lease_owner IS DISTINCT FROM p_owner AS fresh FROM drills d
        WHERE canary.drill_active(d.phase) AND d.next_tick_at <= now()
          AND (d.lease_owner IS NULL OR d.lease_owner = p_owner OR d.lease_until < now())
        ORDER BY d.next_tick_at LIMIT p_max FOR UPDATE SKIP LOCKED),
    c AS (
        UPDATE drills SET lease_owner = p_owner, lease_until = now() + p_lease_ms * interval '1 ms'
        FROM due WHERE drills.id = due.id
        RETURNING drills.id, due.fresh)
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, c.id, c.fresh
    FROM (SELECT 1) one LEFT JOIN c ON true;
$$;

-- Extends the lease and returns the recorded intent (the secondary's share), right before a gateway move.
CREATE FUNCTION canary.drill_renew(p_id bigint, p_owner text, p_lease_ms bigint) RETURNS double precision
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w double precision;
BEGIN
    UPDATE drills SET lease_until = now() + p_lease_ms * interval '1 ms'
        WHERE id = p_id AND lease_owner = p_owner AND lease_until > now() RETURNING weight INTO w;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('drill %s: lease lost to another daemon; not touching the gateway',
                                               p_id));
    END IF;
    RETURN w;
END
$$;

CREATE FUNCTION canary.drill_release_leases(p_owner text) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE drills SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = p_owner;
$$;

-- Records a drill's turn in one transaction. p_doc (built by canaryd from the core's result): phase, outcome,
-- weight, reason, next_tick_ms, figures, status, tick (a drill_ticks data document; absent: no tick row).
-- Audits a phase change (drill.phase), a new intended share (drill.weight.intended) and the end (drill.ended, with
-- the figures). An abort request's events carry the operator who asked.
CREATE FUNCTION canary.drill_record(p_id bigint, p_owner text, p_doc jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d drills;
    new_phase text := p_doc->>'phase';
    new_weight double precision := (p_doc->>'weight')::double precision;
    actor text;
BEGIN
    d := canary.drill_leased(p_id, p_owner);
    IF NOT canary.drill_active(d.phase) THEN
        PERFORM canary.refuse('CNIN0', format('drill %s has ended (%s); nothing is recorded after the end',
                                               p_id, d.phase));
    END IF;
    IF new_weight IS NULL OR new_weight < 0 OR new_weight > 100 THEN
        PERFORM canary.refuse('CNIN0', format('drill %s: weight %s is not a share in 0..100', p_id,
                                               p_doc->>'weight'));
    END IF;
    -- A drill ends only on the primary: its terminal phase needs the restore confirmed (weight 0 applied).
    IF NOT canary.drill_active(new_phase) AND (new_weight <> 0 OR d.applied_weight IS DISTINCT FROM 0::double precision) THEN
        PERFORM canary.refuse('CNIN0', format('drill %s: cannot end (%s) before the gateway confirmed the primary',
                                               p_id, new_phase));
    END IF;
    IF p_doc->>'outcome' = 'aborted' AND d.abort_requested_by IS NOT NULL THEN
        actor := d.abort_requested_by;
    END IF;
    UPDATE drills SET phase = new_phase, outcome = coalesce(p_doc->>'outcome', outcome), weight = new_weight,
        reason = coalesce(p_doc->>'reason', reason), figures = coalesce(p_doc->'figures', figures),
        status = coalesce(p_doc->'status', status), updated_at = clock_timestamp(),
        next_tick_at = clock_timestamp() + coalesce((p_doc->>'next_tick_ms')::bigint, 1000) * interval '1 ms',
        finished_at = CASE WHEN canary.drill_active(new_phase) THEN NULL ELSE clock_timestamp() END
        WHERE id = p_id;
    IF p_doc ? 'tick' THEN
        INSERT INTO drill_ticks (drill_id, phase, weight, data) VALUES (p_id, new_phase, new_weight, p_doc->'tick');
    END IF;
    IF new_phase <> d.phase THEN
        PERFORM canary.audit(NULL, d.service, CASE WHEN new_phase = 'restoring' THEN actor END, 'drill.phase',
                             p_doc->>'reason', jsonb_build_object('drill', p_id, 'from', d.phase, 'to', new_phase,
                                                                  'outcome', p_doc->>'outcome'));
    END IF;
    IF new_weight <> d.weight THEN
        PERFORM canary.audit(NULL, d.service, NULL, 'drill.weight.intended', p_doc->>'reason',
                             jsonb_build_object('drill', p_id, 'from', d.weight, 'to', new_weight));
    END IF;
    IF NOT canary.drill_active(new_phase) THEN
        PERFORM canary.audit(NULL, d.service, NULL, 'drill.ended', p_doc->>'reason',
                             jsonb_build_object('drill', p_id, 'outcome', new_phase,
                                                'figures', coalesce(p_doc->'figures', d.figures)));
    END IF;
END
$$;

-- The gateway confirmed p_weight for the secondary. Only the lease holder confirms, and only the recorded intent.
CREATE FUNCTION canary.drill_confirm_weight(p_id bigint, p_owner text, p_weight double precision,
                                            p_reconciled boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    svc text;
BEGIN
    UPDATE drills SET applied_weight = p_weight, updated_at = clock_timestamp()
        WHERE id = p_id AND weight = p_weight AND lease_owner = p_owner AND lease_until > now()
        RETURNING service INTO svc;
    IF NOT FOUND THEN
        PERFORM canary.refuse('CNUN0', format('drill %s: lease lost or intent changed before the gateway was '
                                               'confirmed; the lease holder reconciles', p_id));
    END IF;
    PERFORM canary.audit(NULL, svc, NULL, CASE WHEN p_reconciled THEN 'drill.weight.reconciled'
                                               ELSE 'drill.weight.confirmed' END, NULL,
                         jsonb_build_object('drill', p_id, 'weight', p_weight));
END
$$;

-- Starts the drills that services' files schedule (drill.every) and that are due: none active, no active rollout,
-- and the last drill of the service (any) began at least `every` ago. Run by canaryd each round; concurrent
-- daemons serialise on the services' rows. Returns the ids started.
CREATE FUNCTION canary.start_scheduled_drills() RETURNS SETOF bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s record;
    did bigint;
BEGIN
    FOR s IN
        SELECT DISTINCT ON (v.service) v.service, v.spec->'drill' AS drill
        FROM service_versions v ORDER BY v.service, v.version DESC
    LOOP
        CONTINUE WHEN s.drill IS NULL OR (s.drill->>'every_ms') IS NULL;
        CONTINUE WHEN EXISTS (SELECT 1 FROM drills d WHERE d.service = s.service
            AND (canary.drill_active(d.phase)
                 OR d.created_at > now() - (s.drill->>'every_ms')::bigint * interval '1 ms'));
        CONTINUE WHEN EXISTS (SELECT 1 FROM rollouts r WHERE r.service = s.service
            AND r.phase IN ('pending', 'progressing', 'paused', 'awaiting_approval'));
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM policies p WHERE p.name = s.drill->>'policy');
        BEGIN
            did := canary.drill_insert(s.service, NULL, s.drill->>'policy', (s.drill->>'hold_ms')::bigint,
                                       coalesce((s.drill->>'baseline_ms')::bigint, 30000),
                                       format('scheduled: every %s', s.drill->>'every'), true);
            RETURN NEXT did;
        EXCEPTION WHEN SQLSTATE 'CNIN0' THEN
            NULL; -- raced with a rollout or another daemon: the next round looks again
        END;
    END LOOP;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA canary FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.start_drill(text, text, text, bigint, bigint, text),
    canary.abort_drill(bigint, text)
    TO canary_operator;
GRANT EXECUTE ON FUNCTION canary.drill_claim(text, bigint, integer), canary.drill_renew(bigint, text, bigint),
    canary.drill_release_leases(text), canary.drill_record(bigint, text, jsonb),
    canary.drill_confirm_weight(bigint, text, double precision, boolean), canary.start_scheduled_drills()
    TO canary_controller;
