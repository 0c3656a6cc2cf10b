// Export downloads: GET /v1/exports/<tenant>/<job>.csv?expires=…&sig=… streams the file; the signed link is the credential.
import { Hono } from "hono";
import { AppError } from "../../platform/errors";
import { exportStorageKey, verifyExportLink } from "./services/export-links";

export const exportRoutes = new Hono();

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * No login: a link is signed for one storage key and an expiry, so it opens that one file for a short
 * time and nothing else (another tenant's path or a later expiry breaks the signature). The key is
 * rebuilt from the checked path, never taken from the request as is.
 */
exportRoutes.get("/:tenantId/:file", async (c) => {
  const env = c.get("env");
  const tenantId = c.req.param("tenantId");
  const jobId = c.req.param("file").replace(/\.csv$/, "");
  if (!uuid.test(tenantId) || !uuid.test(jobId) || !c.req.param("file").endsWith(".csv")) {
    throw new AppError("LINK_INVALID", "This download link is invalid", { tier: "jobs" });
  }
  const key = exportStorageKey(tenantId, jobId);
  await verifyExportLink(env, key, c.req.query("expires"), c.req.query("sig"), c.get("services").clock.now());
  let object: R2ObjectBody | null;
  try {
    object = await env.CONTENT_BUCKET.get(key);
  } catch (error) {
    throw new AppError("SERVICE_UNAVAILABLE", "The content tier is unavailable; try again shortly", { tier: "content", cause: error });
  }
  if (!object) throw new AppError("NOT_FOUND", "This export is no longer available", { tier: "jobs" });
  return c.body(object.body, 200, {
    "content-type": "text/csv; charset=utf-8",
    "content-length": String(object.size),
    "content-disposition": `attachment; filename="leads-${jobId}.csv"`,
    "cache-control": "private, no-store",
  });
});
