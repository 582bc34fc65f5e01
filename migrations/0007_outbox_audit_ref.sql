-- The outbox's audit_id is a plain reference, not a foreign key: a foreign key onto audit_events made TRUNCATE of
-- the audit fail as "referenced in a foreign key constraint" (0A000, an internal error to canaryctl) before the
-- privilege check could refuse it as what it is, a permission denied (42501). The audit is append-only and its rows
-- are never deleted, so the reference cannot dangle.
ALTER TABLE outbox DROP CONSTRAINT outbox_audit_id_fkey;
