-- Many ticks in one round trip (issue 13). canary.record_batch records the i-th document of the JSON array p_docs
-- for the i-th rollout
-- through canary.record, each in a subtransaction of its own, so one refusal (a lease lost, a rollout that ended)
-- costs that element only, and returns one row per element: ok, or the SQLSTATE and message canary.record raised.
-- Everything canary.record checks and writes is unchanged: the lease, the audit events in each rollout's own hash
-- chain, the actor from session_user (SECURITY DEFINER keeps session_user; only current_user changes).
CREATE FUNCTION canary.record_batch(p_owner text, p_ids bigint[], p_docs jsonb)
    RETURNS TABLE (idx integer, ok boolean, err_state text, err_message text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    i integer;
BEGIN
    IF jsonb_typeof(p_docs) IS DISTINCT FROM 'array' THEN
        PERFORM canary.refuse('CNIN0', 'record_batch: the documents are not a JSON array');
    END IF;
    IF coalesce(array_length(p_ids, 1), 0) <> jsonb_array_length(p_docs) THEN
        PERFORM canary.refuse('CNIN0', format('record_batch: %s ids but %s documents',
                                               coalesce(array_length(p_ids, 1), 0),
                                               jsonb_array_length(p_docs)));
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        idx := i;
        BEGIN
            PERFORM canary.record(p_ids[i], p_owner, p_docs -> (i - 1));
            ok := true;
            err_state := NULL;
            err_message := NULL;
        EXCEPTION WHEN OTHERS THEN
            ok := false;
            err_state := SQLSTATE;
            err_message := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION canary.record_batch(text, bigint[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION canary.record_batch(text, bigint[], jsonb) TO canary_controller;

