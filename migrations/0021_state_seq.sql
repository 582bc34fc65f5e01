-- A version number for a rollout's stored state (issue 13: 10,000 rollouts per canaryd). canaryd kept re-reading
-- and re-parsing each rollout's ~8 kB state at every tick (a third of its loop's CPU at N=10,000, and PostgreSQL
-- turned the jsonb into text for it). It now keeps the state it recorded and asks for the stored state only when
-- the row's state_seq is not the one it expects.
--
-- state_seq goes up by exactly one with every UPDATE that names state (or state_seq) among its targets, whoever
-- runs it: canary.record, canary.record_batch, or an owner typing SQL. No statement can set it to a value of its
-- choosing, so an equal number means the very state written then. Updates that leave state out of their targets
-- (leases, weights confirmed) do not fire the trigger. A new row starts at 0.
ALTER TABLE rollouts ADD COLUMN state_seq bigint NOT NULL DEFAULT 0;

CREATE FUNCTION canary_state_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.state_seq := OLD.state_seq + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER rollouts_state_seq BEFORE UPDATE OF state, state_seq ON rollouts
    FOR EACH ROW EXECUTE FUNCTION canary_state_seq();

-- an inserted row cannot claim a number either
CREATE FUNCTION canary_state_seq_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.state_seq := 0;
    RETURN NEW;
END
$$;

CREATE TRIGGER rollouts_state_seq_new BEFORE INSERT ON rollouts
    FOR EACH ROW EXECUTE FUNCTION canary_state_seq_new();
