-- Lifecycle access for the tables of 0014 and for the checks that span tenants (src/lifecycle).
-- Forces row-level security on the new tables (drizzle-kit only enables it) and grants them, as 0011 does.
DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relforcerowsecurity
  LOOP
    EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t.relname);
  END LOOP;
END
$$;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user;
--> statement-breakpoint
-- The internal 'lifecycle' role context (no token can carry it) reads every tenant's rows: the consistency
-- checker and the retention report. One read policy per table that has row-level security.
DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity
             AND NOT EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname AND p.policyname = c.relname || '_lifecycle_read')
  LOOP
    EXECUTE format('CREATE POLICY %I ON public.%I AS PERMISSIVE FOR SELECT USING ((select current_setting(''app.current_role'', true)) = ''lifecycle'')',
                   t.relname || '_lifecycle_read', t.relname);
  END LOOP;
END
$$;
--> statement-breakpoint
-- Content pruning and the reference-count rebuild change catalog rows of every tenant. Pruning runs as
-- 'lifecycle' rather than 'maintenance' because its re-check must see referenced rows too.
CREATE POLICY "content_objects_lifecycle_update" ON "content_objects" AS PERMISSIVE FOR UPDATE
  USING ((select current_setting('app.current_role', true)) = 'lifecycle')
  WITH CHECK ((select current_setting('app.current_role', true)) = 'lifecycle');
--> statement-breakpoint
CREATE POLICY "content_objects_lifecycle_delete" ON "content_objects" AS PERMISSIVE FOR DELETE
  USING ((select current_setting('app.current_role', true)) = 'lifecycle');
--> statement-breakpoint
-- Called in an email write's transaction for the bytes it found in R2 instead of writing: if the pruning
-- or the orphan reconciler has purged them since, the write fails with 40001 and starts over.
CREATE FUNCTION content_assert_live(tenant uuid, hashes text[]) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM content_tombstones
             WHERE tenant_id = tenant AND hash = ANY(hashes) AND purged_at IS NOT NULL) THEN
    RAISE EXCEPTION 'content object was deleted while this write used it' USING ERRCODE = '40001';
  END IF;
  RETURN true;
END
$$;
