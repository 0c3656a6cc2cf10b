-- Custom (drizzle-kit cannot express column grants): a closed tenant's compliance entries are kept but
-- pseudonymised by the tenant closure (src/lifecycle/tenant-closure.ts), running as the internal 'analytics'
-- role. The log stays append-only otherwise: no DELETE, and UPDATE only of the columns that can name someone.
GRANT UPDATE ("tenant_id", "actor_id", "actor_tenant_id", "target_id", "ip", "user_agent", "details") ON "admin_audit_log" TO app_user;
--> statement-breakpoint
CREATE POLICY "admin_audit_log_pseudonymise" ON "admin_audit_log" AS PERMISSIVE FOR UPDATE
  USING ((select current_setting('app.current_role', true)) = 'analytics')
  WITH CHECK ((select current_setting('app.current_role', true)) = 'analytics');
