-- Unit economics as SLOs (issue 14, item 1): policies may judge tokens_per_second and cost_per_1k_tokens.
-- The metric column's check listed the four latency/error metrics; the loader's key table is the authority on which
-- metric words exist (it refuses unknown ones with FILE:LINE:COL and 65), so the table only keeps a sane word: new
-- metrics (this issue's, issue 12's contract_violations) then need no migration of their own.
ALTER TABLE policy_slos DROP CONSTRAINT IF EXISTS policy_slos_metric_check;
ALTER TABLE policy_slos ADD CONSTRAINT policy_slos_metric_check CHECK (metric ~ '^[a-z][a-z0-9_]{0,62}$');
