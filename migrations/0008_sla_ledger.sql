-- The SLA ledger: what canaryd observed of each live service, one row per service and minute, kept so that a
-- quantile can be computed honestly for any window of whole minutes. A minute's p99 cannot be merged into a
-- 5-minute p99, so the row holds the minute's histogram bucket counts (per bucket, not cumulative; trailing empty
-- buckets left out), with the bucket bounds stored once per layout in sla_bounds. A minute canaryd looked at and
-- could not measure (a failed scrape, a counter reset, a histogram whose buckets changed) is a row without numbers
-- (requests NULL) and a note saying why; a minute nobody looked at has no row. Both are "no data" to the report.
--
-- Writes go through canary.sla_record (the controller role): idempotent per (service, minute), so two daemons or a
-- restart never count a minute twice (the first record of a minute wins). Viewers read the tables. Retention:
-- 43,200 rows per service and 30-day month; canary.sla_gc (operators) deletes minutes before a date (at most up to
-- the current month's start), audited.

CREATE TABLE sla_bounds (
    id serial PRIMARY KEY,
    le double precision[] NOT NULL UNIQUE   -- upper bounds in seconds, ascending, the last one 'Infinity'
);

CREATE TABLE sla_minutes (
    service     text NOT NULL REFERENCES services (name),
    minute      timestamptz NOT NULL,        -- the minute's start
    requests    bigint,                      -- NULL: no data (note says why)
    errors      bigint,
    lat_bounds  integer REFERENCES sla_bounds (id),
    lat         integer[],                   -- end-to-end latency: observations per bucket in this minute
    ttft_bounds integer REFERENCES sla_bounds (id),
    ttft        integer[],                   -- time to first token, the same way
    note        text,
    PRIMARY KEY (service, minute),
    CHECK ((requests IS NULL) = (errors IS NULL) AND requests >= 0 AND errors >= 0)
);

REVOKE ALL ON sla_bounds, sla_minutes FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
REVOKE ALL ON SEQUENCE sla_bounds_id_seq FROM PUBLIC, canary_viewer, canary_operator, canary_controller;
GRANT SELECT ON sla_bounds, sla_minutes TO canary_viewer;

-- Records one minute of a service. p_requests NULL: no data (p_note says why). A histogram is its bounds (p_*_le,
-- ascending, the last +Inf) and its per-bucket counts (at most as many; missing ones are 0). Returns true when the
-- minute was recorded, false when it already was (by another daemon, or before a restart).
CREATE FUNCTION canary.sla_record(p_service text, p_minute timestamptz, p_requests bigint, p_errors bigint,
                                  p_lat_le double precision[], p_lat integer[], p_ttft_le double precision[],
                                  p_ttft integer[], p_note text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lb integer;
    tb integer;
BEGIN
    IF p_minute > clock_timestamp() THEN
        PERFORM canary.refuse('CNIN0', format('sla: minute %s of service %s is in the future', p_minute, p_service));
    END IF;
    IF p_requests < 0 OR p_errors < 0 OR (p_requests IS NULL) <> (p_errors IS NULL) THEN
        PERFORM canary.refuse('CNIN0', format('sla: service %s minute %s: requests %s and errors %s must both be '
                                              'counts, or both NULL (no data)', p_service, p_minute, p_requests,
                                              p_errors));
    END IF;
    IF coalesce(array_length(p_lat, 1), 0) > coalesce(array_length(p_lat_le, 1), 0)
       OR coalesce(array_length(p_ttft, 1), 0) > coalesce(array_length(p_ttft_le, 1), 0)
       OR 0 > ANY (p_lat) OR 0 > ANY (p_ttft) THEN
        PERFORM canary.refuse('CNIN0', format('sla: service %s minute %s: a histogram has more counts than bounds, '
                                              'or a negative count', p_service, p_minute));
    END IF;
    IF p_lat_le IS NOT NULL THEN
        INSERT INTO sla_bounds (le) VALUES (p_lat_le) ON CONFLICT (le) DO NOTHING;
        SELECT id INTO lb FROM sla_bounds WHERE le = p_lat_le;
    END IF;
    IF p_ttft_le IS NOT NULL THEN
        INSERT INTO sla_bounds (le) VALUES (p_ttft_le) ON CONFLICT (le) DO NOTHING;
        SELECT id INTO tb FROM sla_bounds WHERE le = p_ttft_le;
    END IF;
    INSERT INTO sla_minutes (service, minute, requests, errors, lat_bounds, lat, ttft_bounds, ttft, note)
        VALUES (p_service, p_minute, p_requests, p_errors, lb, CASE WHEN lb IS NULL THEN NULL ELSE p_lat END, tb,
                CASE WHEN tb IS NULL THEN NULL ELSE p_ttft END, left(p_note, 300))
        ON CONFLICT (service, minute) DO NOTHING;
    RETURN FOUND;
END
$$;

-- Deletes the ledger's minutes before p_before (all services), with an audit event saying who and how many.
-- Returns how many rows went.
CREATE FUNCTION canary.sla_gc(p_before timestamptz, p_reason text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF p_before > date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        PERFORM canary.refuse('CNIN0', format('sla gc: %s is inside the current month (UTC), which stays', p_before));
    END IF;
    DELETE FROM sla_minutes WHERE minute < p_before;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM canary.audit(NULL, NULL, NULL, 'sla.gc', p_reason, jsonb_build_object('before', p_before, 'rows', n));
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION canary.sla_record(text, timestamptz, bigint, bigint, double precision[], integer[],
    double precision[], integer[], text), canary.sla_gc(timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.sla_record(text, timestamptz, bigint, bigint, double precision[], integer[],
    double precision[], integer[], text) TO canary_controller;
GRANT EXECUTE ON FUNCTION canary.sla_gc(timestamptz, text) TO canary_operator;
