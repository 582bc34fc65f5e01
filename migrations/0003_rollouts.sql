-- Rollouts, their measurements and decisions, and operators' commands.

CREATE TABLE rollouts (
    id                 bigserial PRIMARY KEY,
    service            text NOT NULL REFERENCES services (name),
    service_version_id bigint NOT NULL REFERENCES service_versions (id),
    policy_id          bigint NOT NULL REFERENCES policies (id),   -- the pinned policy version
    candidate          text NOT NULL,          -- model version in the candidate slot
    baseline           text,                   -- model version live when the rollout started
    candidate_slot     smallint NOT NULL CHECK (candidate_slot IN (0, 1)),
    phase              text NOT NULL DEFAULT 'pending' CHECK (phase IN ('pending', 'progressing', 'paused',
                           'awaiting_approval', 'promoted', 'rolled_back', 'aborted', 'failed')),
    step               integer NOT NULL DEFAULT -1,
    weight             double precision NOT NULL DEFAULT 0,  -- intended candidate share, committed before the gateway call
    applied_weight     double precision,                      -- last share the gateway confirmed
    state              jsonb,                                 -- the core's state between ticks
    status             jsonb,                                 -- the last tick's verdicts, for `status`
    reason             text,                                  -- why it is where it is, in words
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text NOT NULL DEFAULT session_user,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    next_tick_at       timestamptz NOT NULL DEFAULT now(),
    lease_owner        text,
    lease_until        timestamptz
);
-- One active rollout per service.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (service)
    WHERE phase IN ('pending', 'progressing', 'paused', 'awaiting_approval');
CREATE INDEX rollouts_due ON rollouts (next_tick_at)
    WHERE phase IN ('pending', 'progressing', 'paused', 'awaiting_approval');

CREATE TABLE measurements (
    id         bigserial PRIMARY KEY,
    rollout_id bigint NOT NULL REFERENCES rollouts (id),
    at         timestamptz NOT NULL,
    step       integer NOT NULL,
    weight     double precision NOT NULL,
    baseline   jsonb NOT NULL,   -- cumulative counters as read
    candidate  jsonb NOT NULL
);
CREATE INDEX measurements_rollout ON measurements (rollout_id, id);

CREATE TABLE decisions (
    id           bigserial PRIMARY KEY,
    rollout_id   bigint NOT NULL REFERENCES rollouts (id),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    step         integer NOT NULL,
    weight       double precision NOT NULL,
    decision     text NOT NULL,
    phase_before text NOT NULL,
    phase_after  text NOT NULL,
    reason       text NOT NULL
);
CREATE INDEX decisions_rollout ON decisions (rollout_id, id);

CREATE TABLE slo_verdicts (
    decision_id bigint NOT NULL REFERENCES decisions (id),
    slo         text NOT NULL,
    verdict     text NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive')),
    candidate   double precision,
    baseline    double precision,
    objective   double precision,
    n_candidate double precision,
    n_baseline  double precision,
    why         text NOT NULL,
    PRIMARY KEY (decision_id, slo)
);

CREATE TABLE commands (
    id         bigserial PRIMARY KEY,
    rollout_id bigint NOT NULL REFERENCES rollouts (id),
    kind       text NOT NULL CHECK (kind IN ('approve', 'pause', 'resume', 'abort', 'promote_full')),
    actor      text NOT NULL DEFAULT session_user,
    reason     text CHECK (length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    handled_at timestamptz,
    result     text
);
CREATE INDEX commands_pending ON commands (rollout_id, id) WHERE handled_at IS NULL;

-- Wake the daemons at once when a rollout or a command arrives.
CREATE FUNCTION canary_notify_rollout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('canary', 'rollout:' || NEW.id);
    RETURN NEW;
END
$$;
CREATE FUNCTION canary_notify_command() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('canary', 'command:' || NEW.rollout_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER rollouts_notify AFTER INSERT ON rollouts FOR EACH ROW EXECUTE FUNCTION canary_notify_rollout();
CREATE TRIGGER commands_notify AFTER INSERT ON commands FOR EACH ROW EXECUTE FUNCTION canary_notify_command();

CREATE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE ON measurements
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER slo_verdicts_append_only BEFORE UPDATE OR DELETE ON slo_verdicts
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();

GRANT SELECT ON rollouts, measurements, decisions, slo_verdicts, commands TO canary_viewer;
GRANT INSERT ON rollouts, commands TO canary_operator;
GRANT USAGE ON SEQUENCE rollouts_id_seq, commands_id_seq TO canary_operator;
GRANT UPDATE ON rollouts TO canary_controller;
GRANT UPDATE (handled_at, result) ON commands TO canary_controller;
GRANT INSERT ON measurements, decisions, slo_verdicts TO canary_controller;
GRANT USAGE ON SEQUENCE measurements_id_seq, decisions_id_seq TO canary_controller;
