// The download link jobs.get adds to a finished export: signed for the job's own file, valid for a short time.
import type { Env } from "../../../platform/env";
import type { JobsConfig } from "../config";
import { exportStorageKey, signExportLink, type ExportLink } from "./export-links";
import type { Job } from "../../../platform/jobs/rows";

/** Null unless the job is a succeeded export whose file was written; the key is rebuilt from the job, not read from its progress. */
export async function exportDownload(env: Env, job: Job, origin: string, config: JobsConfig, now: Date): Promise<ExportLink | null> {
  if (job.type !== "EXPORT_LEADS" || job.status !== "succeeded" || !job.tenantId || !job.progress?.storageKey) return null;
  return signExportLink(env, exportStorageKey(job.tenantId, job.id), config.export.linkTtlSeconds, origin, now);
}
