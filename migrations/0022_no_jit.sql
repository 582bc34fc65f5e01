-- No JIT compilation inside canary's functions (issue 13). PostgreSQL compiles a query's expressions with LLVM when
-- its estimated cost passes jit_above_cost (100,000 by default), and the estimates of canary.claim grow with the
-- rollouts table, whose finished rows are kept for ever: with 10,000 active rollouts and 450,000 finished ones a
-- claim took 700-940 ms, nearly all of it compiling (auto_explain: "JIT ... Emission 86 ms" per statement, several
-- statements a call), against 7-10 ms without. These functions run a few cheap statements many times a second;
-- compiling them never pays. Every function in schema canary gets `SET jit = off`; one added later must say it too
-- (test_store_migrate checks).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'canary'::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
    END LOOP;
END
$$;
