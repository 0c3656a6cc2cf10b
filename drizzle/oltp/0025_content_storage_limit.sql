-- Custom (a function drizzle-kit cannot express): the plan's storage limit, checked last in a content write's
-- transaction (src/tiers/content/services/writes.ts). The catalog's stored bytes of the tenant, after the write,
-- must be within tenants.max_storage_bytes; otherwise the whole write rolls back with SQLSTATE ED001, which the
-- Worker answers as 403 STORAGE_LIMIT_EXCEEDED (src/platform/db.ts). SECURITY INVOKER: it reads under the
-- caller's row-level security, so only the caller's own tenant.
CREATE FUNCTION content_assert_within_storage_limit(tenant uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  used bigint;
  allowed bigint;
BEGIN
  SELECT coalesce(sum(stored_size), 0) INTO used FROM content_objects WHERE tenant_id = tenant;
  SELECT max_storage_bytes INTO allowed FROM tenants WHERE id = tenant;
  IF allowed IS NOT NULL AND used > allowed THEN
    RAISE EXCEPTION 'content storage limit exceeded' USING ERRCODE = 'ED001',
      DETAIL = json_build_object('used', used, 'allowed', allowed)::text;
  END IF;
  RETURN true;
END
$$;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION content_assert_within_storage_limit(uuid) TO app_user;
