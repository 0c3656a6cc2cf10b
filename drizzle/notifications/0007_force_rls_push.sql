-- The push subscriptions table of 0006 gets what 0005 gave the earlier ones: FORCEd row-level security and the
-- internal 'lifecycle' read policy (both loops skip tables that already have them).
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
