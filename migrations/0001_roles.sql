-- Roles canary's users log in as (through member login roles): permissions are GRANTs on these.
-- Roles are cluster-wide: several databases on one server (tests run in parallel) may create them at the same
-- moment, so a role or membership that appears meanwhile is not an error. GRANTs on tables come with later
-- migrations.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['canary_viewer', 'canary_operator', 'canary_controller'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    FOREACH r IN ARRAY ARRAY['canary_operator', 'canary_controller'] LOOP
        IF NOT pg_has_role(r, 'canary_viewer', 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT canary_viewer TO %I', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;
