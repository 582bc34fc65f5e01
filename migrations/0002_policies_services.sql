-- Versioned policies and services. A version is immutable: a change of content makes a new version.

CREATE TABLE policies (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    version        integer NOT NULL CHECK (version >= 1),
    content_sha256 text NOT NULL,
    source         text NOT NULL,             -- the YAML as applied
    spec           jsonb NOT NULL,            -- the parsed, normalised policy (defaults filled in)
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL DEFAULT session_user,
    UNIQUE (name, version)
);

CREATE TABLE policy_steps (
    policy_id  bigint NOT NULL REFERENCES policies (id),
    idx        integer NOT NULL,
    weight_pct double precision NOT NULL CHECK (weight_pct > 0 AND weight_pct <= 100),
    hold_ms    bigint NOT NULL CHECK (hold_ms > 0),
    approval   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy_id, idx)
);

CREATE TABLE policy_slos (
    policy_id    bigint NOT NULL REFERENCES policies (id),
    idx          integer NOT NULL,
    name         text NOT NULL,
    metric       text NOT NULL CHECK (metric IN ('error_rate', 'latency', 'ttft', 'itl')),
    quantile     double precision CHECK (quantile > 0 AND quantile < 1),
    max_value    double precision,           -- seconds, or a fraction for error_rate
    max_increase double precision,           -- candidate / baseline
    tolerance    double precision,
    PRIMARY KEY (policy_id, idx),
    UNIQUE (policy_id, name)
);

CREATE TABLE services (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    live_slot       smallint NOT NULL CHECK (live_slot IN (0, 1)),
    live_version    text,                    -- model version serving in the live slot, when known
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_versions (
    id             bigserial PRIMARY KEY,
    service        text NOT NULL REFERENCES services (name),
    version        integer NOT NULL CHECK (version >= 1),
    content_sha256 text NOT NULL,
    source         text NOT NULL,
    spec           jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL DEFAULT session_user,
    UNIQUE (service, version)
);

-- Audit events: append-only. (Hash chaining comes with the audit issue.)
CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL DEFAULT session_user,
    rollout_id bigint,
    service    text,
    kind       text NOT NULL,                -- e.g. policy.applied, rollout.started, weight.intended, tick
    reason     text,
    data       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_rollout ON audit_events (rollout_id, id);

CREATE FUNCTION canary_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: rows are immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER policies_immutable BEFORE UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER policy_steps_immutable BEFORE UPDATE OR DELETE ON policy_steps
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER policy_slos_immutable BEFORE UPDATE OR DELETE ON policy_slos
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER service_versions_immutable BEFORE UPDATE OR DELETE ON service_versions
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION canary_refuse_change();

GRANT SELECT ON policies, policy_steps, policy_slos, services, service_versions, audit_events TO canary_viewer;
GRANT INSERT ON policies, policy_steps, policy_slos, services, service_versions, audit_events TO canary_operator;
GRANT UPDATE (updated_at) ON services TO canary_operator;
GRANT USAGE ON SEQUENCE policies_id_seq, service_versions_id_seq, audit_events_id_seq TO canary_operator;
GRANT UPDATE (live_slot, live_version, updated_at) ON services TO canary_controller;
GRANT INSERT ON audit_events TO canary_controller;
GRANT USAGE ON SEQUENCE audit_events_id_seq TO canary_controller;
