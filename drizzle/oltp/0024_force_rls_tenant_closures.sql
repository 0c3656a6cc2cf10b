-- Custom (drizzle-kit cannot express it): FORCE row-level security on tenant_closures, which only the internal
-- lifecycle role reads and writes (its policy is in 0023), and grant it to the application role.
ALTER TABLE "tenant_closures" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "tenant_closures" TO app_user;
