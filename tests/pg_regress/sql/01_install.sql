-- Install as on Supabase: anon / authenticated / service_role exist and default
-- privileges grant them everything created in public. vibe_ft must revoke that.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'regress_backend', 'regress_nobody'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
CREATE EXTENSION vibe_ft;
RESET client_min_messages;

-- What the extension created, and where.
SELECT n.nspname AS schema, p.proname AS function, pg_get_function_identity_arguments(p.oid) AS args
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname IN (
       'export_training_dataset_openai_jsonl', 'should_create_finetuning_job', 'create_finetuning_job',
       'update_finetuning_job_status', 'get_latest_finetuned_model')
 ORDER BY 2;

-- Result columns, exactly as the contract names them.
SELECT p.proname, pg_get_function_result(p.oid) AS result
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE ANY (ARRAY['%finetun%', 'export_training%'])
 ORDER BY 1;

-- Defaults, as named-argument callers rely on them.
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE ANY (ARRAY['%finetun%', 'export_training%'])
 ORDER BY 1;

SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name = 'finetuning_job_stats' ORDER BY ordinal_position;

SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'vibe_ft'::regnamespace AND c.relkind IN ('r', 'S', 'v') ORDER BY 1;

-- Nobody but the owner can use anything: not PUBLIC, not Supabase's roles.
SELECT r.rolname,
       count(*) FILTER (WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE')) AS executable_functions
  FROM pg_roles r,
       pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
                 JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
 WHERE r.rolname IN ('anon', 'authenticated', 'service_role', 'regress_nobody')
 GROUP BY r.rolname ORDER BY 1;
SELECT has_function_privilege('public', 'public.should_create_finetuning_job(uuid,integer,integer)', 'EXECUTE') AS public_can_execute;
SELECT has_table_privilege('anon', 'public.finetuning_job_stats', 'SELECT') AS anon_reads_view,
       has_table_privilege('authenticated', 'public.finetuning_job_stats', 'SELECT') AS authenticated_reads_view,
       has_schema_privilege('anon', 'vibe_ft', 'USAGE') AS anon_uses_schema;

-- SECURITY DEFINER functions: only submit_feedback (for signed-in users), and
-- it pins search_path.
SELECT p.oid::regprocedure AS security_definer_function, p.proconfig
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
 WHERE p.prosecdef;

-- Data that must survive pg_dump is marked for it.
SELECT unnest(extconfig)::regclass AS dumped FROM pg_extension WHERE extname = 'vibe_ft' ORDER BY 1;

-- The one documented grant for a trusted backend.
SELECT vibe_ft.grant_access('regress_backend');
SELECT has_function_privilege('regress_backend', 'public.should_create_finetuning_job(uuid,integer,integer)', 'EXECUTE') AS backend_can_execute,
       has_function_privilege('regress_backend', 'vibe_ft.grant_access(regrole)', 'EXECUTE') AS backend_can_grant,
       has_table_privilege('regress_backend', 'public.finetuning_job_stats', 'SELECT') AS backend_reads_view;
