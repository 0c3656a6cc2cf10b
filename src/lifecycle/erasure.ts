// GDPR erasure of a data subject across every tier: the request (with its ERASE_SUBJECT job), the resumable handler, the receipt and the portability export.
import type { Redis } from "@upstash/redis/cloudflare";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { erasureDeps } from "./deps";
import { eraseSubjectFiles } from "./erasure-files";
import { tenantBatch, type TenantScope, type TierStore } from "../platform/db";
import { internalBatch } from "../platform/db";
import { AppError } from "../platform/errors";
import { defineJob } from "../platform/jobs/define";
import type { Logger } from "../platform/logger";
import { rowsOf } from "../platform/rows";
import type { Services } from "../platform/services";
import { type ContentReadDeps, getEmailContent, releaseStatements, sha256 } from "../tiers/content";
import { eraseSubjectKeys, notificationsConfig } from "../tiers/notifications";

export type ErasureSubject = { email: string; userId?: undefined } | { userId: string; email?: undefined };

export interface ErasureDeps {
  oltp: TierStore;
  notifications: TierStore;
  olap: TierStore;
  bucket: Pick<R2Bucket, "delete" | "list" | "get">;
  redis: Redis;
  logger: Logger;
  services: Services;
}

const digestOf = async (email: string) => sha256(new TextEncoder().encode(email.trim().toLowerCase()));

/**
 * Records the request and its ERASE_SUBJECT job in one OLTP transaction (outbox), then sends the job.
 * The tenant is the caller's own; an operator may name another. Only an operator's request is platform-wide:
 * it also erases what belongs to no tenant (platform system events, the address's global auth-email counters).
 */
export async function requestErasure(
  services: Services,
  scope: TenantScope,
  input: { subject: ErasureSubject; tenantId?: string | undefined },
): Promise<{ requestId: string; jobId: string; tenantId: string }> {
  if (input.tenantId && input.tenantId !== scope.tenantId && scope.role !== "operator") {
    throw new AppError("FORBIDDEN", "Tenant admins erase subjects of their own tenant only");
  }
  const tenantId = input.tenantId ?? scope.tenantId;
  const requestId = crypto.randomUUID();
  const email = input.subject.email?.trim().toLowerCase() ?? null;
  const platformWide = scope.role === "operator";
  const prepared = services.jobs.prepare(tenantId, [{ type: eraseSubjectJob.type, payload: { requestId, platformWide } }]);
  const jobId = prepared.ids[0]!;
  const digest = email ? await digestOf(email) : null;
  await tenantBatch(services.store("oltp"), { ...scope, tenantId }, (db) => [
    db.execute(sql`
      insert into erasure_requests (id, tenant_id, subject_email, subject_user_id, subject_digest, requested_by, job_id)
      values (${requestId}, ${tenantId}, ${email}, ${input.subject.userId ?? null}, ${digest}, ${scope.userId}, ${jobId})`),
    prepared.insert(db),
  ]);
  services.jobs.sendAfterResponse(prepared.messages);
  return { requestId, jobId, tenantId };
}

interface ErasureRow {
  id: string;
  tenantId: string;
  subjectEmail: string | null;
  subjectUserId: string | null;
  subjectDigest: string | null;
  requestedBy: string;
  status: string;
  refs: { leadIds: string[]; userIds: string[]; emailIds: string[] } | null;
  steps: Record<string, { doneAt: string; counts: Record<string, number> } | unknown>;
  receipt: Record<string, unknown> | null;
  createdAt: string;
  completedAt: string | null;
}

const toRow = (r: Record<string, unknown>): ErasureRow => ({
  id: String(r.id),
  tenantId: String(r.tenant_id),
  subjectEmail: (r.subject_email as string | null) ?? null,
  subjectUserId: (r.subject_user_id as string | null) ?? null,
  subjectDigest: (r.subject_digest as string | null) ?? null,
  requestedBy: String(r.requested_by),
  status: String(r.status),
  refs: (r.refs as ErasureRow["refs"]) ?? null,
  steps: (r.steps as ErasureRow["steps"]) ?? {},
  receipt: (r.receipt as Record<string, unknown> | null) ?? null,
  createdAt: new Date(String(r.created_at).replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")).toISOString(),
  completedAt: r.completed_at ? new Date(String(r.completed_at).replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")).toISOString() : null,
});

async function loadRequest(store: TierStore, tenantId: string | null, id: string): Promise<ErasureRow | null> {
  const [result] = await internalBatch(store, "lifecycle", tenantId, (db) => [db.execute(sql`select * from erasure_requests where id = ${id}`)]);
  const row = rowsOf(result)[0];
  return row ? toRow(row) : null;
}

export interface ErasureReceipt {
  requestId: string;
  tenantId: string;
  status: string;
  subjectDigest: string | null;
  requestedAt: string;
  completedAt: string | null;
  /** Per tier: what was found and removed, with the time the step finished. */
  steps: ErasureRow["steps"];
  receipt: Record<string, unknown> | null;
}

/** An admin sees their own tenant's requests; an operator any. Another tenant's id is NOT_FOUND. */
export async function erasureReceipt(store: TierStore, scope: TenantScope, requestId: string): Promise<ErasureReceipt> {
  const row = await loadRequest(store, scope.role === "operator" ? null : scope.tenantId, requestId);
  if (!row || (scope.role !== "operator" && row.tenantId !== scope.tenantId)) throw new AppError("NOT_FOUND", "Erasure request not found");
  const { steps } = row;
  const { refs: _refs, ...visibleSteps } = steps as Record<string, unknown>;
  return {
    requestId: row.id,
    tenantId: row.tenantId,
    status: row.status,
    subjectDigest: row.subjectDigest,
    requestedAt: row.createdAt,
    completedAt: row.completedAt,
    steps: visibleSteps,
    receipt: row.receipt,
  };
}

const step = (db: Parameters<Parameters<typeof internalBatch>[3]>[0], id: string, name: string, counts: Record<string, number>) =>
  db.execute(sql`update erasure_requests set steps = steps || jsonb_build_object(${name}::text, jsonb_build_object('doneAt', now(), 'counts', ${JSON.stringify(counts)}::jsonb))
                 where id = ${id}`);

const countOf = (result: unknown) => Number(rowsOf(result)[0]?.n ?? 0);

/** Step 1: the subject's ids, recorded before anything is deleted, so later steps (and retries) work from them. */
async function resolveSubject(deps: ErasureDeps, row: ErasureRow): Promise<ErasureRow> {
  if (row.refs) return row;
  const [result] = await internalBatch(deps.oltp, "lifecycle", row.tenantId, (db) => [
    db.execute(sql`
      with u as (select id, email from users where tenant_id = ${row.tenantId}
                   and (id = ${row.subjectUserId}::uuid or email = lower(${row.subjectEmail}::text))),
           l as (select id from leads where tenant_id = ${row.tenantId}
                   and email = lower(coalesce(${row.subjectEmail}::text, (select email from u limit 1)))),
           e as (select id from emails where tenant_id = ${row.tenantId} and lead_id in (select id from l))
      update erasure_requests set status = 'running',
        subject_email = coalesce(subject_email, (select lower(email) from u limit 1)),
        refs = jsonb_build_object(
          'leadIds', coalesce((select jsonb_agg(id) from l), '[]'::jsonb),
          'userIds', coalesce((select jsonb_agg(id) from u), '[]'::jsonb),
          'emailIds', coalesce((select jsonb_agg(id) from e), '[]'::jsonb))
      where id = ${row.id}
      returning *`),
  ]);
  const updated = toRow(rowsOf(result)[0]!);
  if (!updated.subjectDigest && updated.subjectEmail) {
    const digest = await digestOf(updated.subjectEmail);
    await internalBatch(deps.oltp, "lifecycle", row.tenantId, (db) => [db.execute(sql`update erasure_requests set subject_digest = ${digest} where id = ${row.id}`)]);
    updated.subjectDigest = digest;
  }
  return updated;
}

/**
 * Step 2, content: releases the emails' references (parts, search entries), deletes the catalog rows
 * that reach zero (objects first, then templates nothing else needs), tombstones them as purged so a
 * concurrent write re-using the bytes starts over, and records their keys in the same transaction;
 * then deletes the blobs. A retry finds the keys recorded and deletes them again.
 */
async function eraseContent(deps: ErasureDeps, row: ErasureRow, refs: NonNullable<ErasureRow["refs"]>): Promise<Record<string, number>> {
  const t = row.tenantId;
  const appendKeys = (deleted: ReturnType<typeof sql>) => sql`
    with d as (${deleted}),
    tomb as (insert into content_tombstones (tenant_id, hash, storage_key, purged_at)
             select ${t}::uuid, hash, storage_key, now() from d
             on conflict (tenant_id, hash) do update set purged_at = now())
    update erasure_requests set steps = jsonb_set(steps, '{contentKeys}',
      coalesce(steps->'contentKeys', '[]'::jsonb) || coalesce((select jsonb_agg(storage_key) from d), '[]'::jsonb))
    where id = ${row.id}
    returning jsonb_array_length(steps->'contentKeys') as n`;
  if (!(row.steps as Record<string, unknown>).contentReleased) {
    const [hashRows] = await internalBatch(deps.oltp, "lifecycle", t, (db) => [
      db.execute(sql`select distinct p.hash, o.dictionary_hash from email_content_parts p
                     left join content_objects o on o.tenant_id = p.tenant_id and o.hash = p.hash
                     where p.tenant_id = ${t} and p.email_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(refs.emailIds)}::jsonb))`),
    ]);
    const hashes = rowsOf(hashRows).map((r) => String(r.hash));
    const templates = [...new Set(rowsOf(hashRows).flatMap((r) => (r.dictionary_hash ? [String(r.dictionary_hash)] : [])))];
    const inList = (list: string[]) => sql`(select value from jsonb_array_elements_text(${JSON.stringify(list)}::jsonb))`;
    await internalBatch(deps.oltp, "lifecycle", t, (db) => [
      db.execute(sql`update erasure_requests set steps = steps || '{"contentReleased": true}'::jsonb where id = ${row.id}`),
      ...refs.emailIds.flatMap((emailId) => releaseStatements(db, t, emailId)),
      db.execute(appendKeys(sql`
        delete from content_objects o where o.tenant_id = ${t} and o.hash in ${inList(hashes)} and o.ref_count <= 0
          and not exists (select 1 from content_objects r where r.tenant_id = o.tenant_id and r.dictionary_hash = o.hash)
        returning o.hash, o.storage_key`)),
      db.execute(appendKeys(sql`
        delete from content_objects o where o.tenant_id = ${t} and o.hash in ${inList(templates)} and o.ref_count <= 0
          and not exists (select 1 from content_objects r where r.tenant_id = o.tenant_id and r.dictionary_hash = o.hash)
        returning o.hash, o.storage_key`)),
    ]);
  }
  const fresh = await loadRequest(deps.oltp, t, row.id);
  const keys = ((fresh?.steps as Record<string, unknown>)?.contentKeys as string[] | undefined) ?? [];
  for (let i = 0; i < keys.length; i += 1000) await deps.bucket.delete(keys.slice(i, i + 1000));
  return { emails: refs.emailIds.length, objects: keys.length };
}

/**
 * Step 3, notifications database: the subject's notifications, receipts, preferences, digest settings and push subscriptions (the
 * latter hold their browsers' endpoints and keys), and the tenant's system events that
 * mention the address or the user. Platform-wide events (no tenant) only in a platform-wide (operator's) erasure,
 * counted apart, so a tenant admin's receipt says nothing about what exists outside the tenant.
 */
async function eraseNotifications(deps: ErasureDeps, row: ErasureRow, refs: NonNullable<ErasureRow["refs"]>, platformWide: boolean): Promise<Record<string, number>> {
  const email = row.subjectEmail ?? "\u0000";
  const users = JSON.stringify(refs.userIds);
  const mentions = (text: ReturnType<typeof sql>) => sql`position(${email} in lower(${text})) > 0`;
  const eventsWhere = (owner: ReturnType<typeof sql>) => sql`${owner}
                     and (e.user_id in (select value::uuid from jsonb_array_elements_text(${users}::jsonb))
                          or ${mentions(sql`e.description || ' ' || e.details::text`)})`;
  const subjectUser = (column: ReturnType<typeof sql>) => sql`${column} in (select value::uuid from jsonb_array_elements_text(${users}::jsonb))`;
  const [notifications, receipts, events, platformEvents, preferences, , pushSubscriptions] = await internalBatch(deps.notifications, "system", row.tenantId, (db) => [
    db.execute(sql`with d as (delete from notifications n where n.tenant_id = ${row.tenantId}
                     and (n.user_id in (select value::uuid from jsonb_array_elements_text(${users}::jsonb))
                          or ${mentions(sql`n.title || ' ' || n.message || ' ' || n.data::text`)})
                     returning 1) select count(*)::int as n from d`),
    db.execute(sql`with d as (delete from notification_receipts r where r.tenant_id = ${row.tenantId}
                     and r.user_id in (select value::uuid from jsonb_array_elements_text(${users}::jsonb)) returning 1)
                   select count(*)::int as n from d`),
    db.execute(sql`with d as (delete from admin_system_events e where ${eventsWhere(sql`e.tenant_id = ${row.tenantId}`)}
                     returning 1) select count(*)::int as n from d`),
    platformWide
      ? db.execute(sql`with d as (delete from admin_system_events e where ${eventsWhere(sql`e.tenant_id is null`)}
                         returning 1) select count(*)::int as n from d`)
      : db.execute(sql`select 0 as n`),
    db.execute(sql`with d as (delete from notification_preferences p where p.tenant_id = ${row.tenantId} and ${subjectUser(sql`p.user_id`)}
                     returning 1) select count(*)::int as n from d`),
    db.execute(sql`delete from notification_digest_settings d where d.tenant_id = ${row.tenantId} and ${subjectUser(sql`d.user_id`)}`),
    db.execute(sql`with d as (delete from notification_push_subscriptions s where s.tenant_id = ${row.tenantId} and ${subjectUser(sql`s.user_id`)}
                     returning 1) select count(*)::int as n from d`),
  ]);
  const counts = {
    notifications: countOf(notifications),
    receipts: countOf(receipts),
    systemEvents: countOf(events),
    preferences: countOf(preferences),
    pushSubscriptions: countOf(pushSubscriptions),
  };
  return platformWide ? { ...counts, platformSystemEvents: countOf(platformEvents) } : counts;
}

/** Step 4, OLAP: rows that identify the person (per-lead analytics); aggregates over many people stay. */
async function eraseOlap(deps: ErasureDeps, row: ErasureRow, refs: NonNullable<ErasureRow["refs"]>): Promise<Record<string, number>> {
  const [leadRows] = await internalBatch(deps.olap, "analytics", null, (db) => [
    db.execute(sql`with d as (delete from lead_analytics where tenant_id = ${row.tenantId}
                     and lead_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(refs.leadIds)}::jsonb)) returning 1)
                   select count(*)::int as n from d`),
  ]);
  return { leadAnalytics: countOf(leadRows) };
}

/**
 * Step 5, Redis: the keys the notifications tier keeps about the subject, by their exact names (never a scan
 * for the address): the tenant's cached counts and limiter windows of the user, and, only in a platform-wide
 * (operator's) erasure, the address's global auth-email counters.
 */
async function eraseRedis(deps: ErasureDeps, row: ErasureRow, refs: NonNullable<ErasureRow["refs"]>, platformWide: boolean): Promise<Record<string, number>> {
  const keys = await eraseSubjectKeys(deps.redis, notificationsConfig, {
    tenantId: row.tenantId,
    userIds: refs.userIds,
    email: row.subjectEmail,
    platformWide,
  });
  return { keys };
}

/**
 * Step 6, OLTP: ledger jobs whose payload refers to the subject, the emails (their events cascade),
 * the leads (enrolments cascade) and the user's membership. Kept, as billing needs them and they name
 * no one: usage_counters (monthly counts) and subscriptions (the tenant's plan).
 */
async function eraseOltp(deps: ErasureDeps, row: ErasureRow, refs: NonNullable<ErasureRow["refs"]>): Promise<Record<string, number>> {
  const t = row.tenantId;
  const ids = (list: string[]) => sql`(select value::uuid from jsonb_array_elements_text(${JSON.stringify(list)}::jsonb))`;
  const mentioned = [...refs.emailIds, ...refs.leadIds, ...refs.userIds, ...(row.subjectEmail ? [row.subjectEmail] : [])];
  const [jobs, emails, leads, users, suppressed, invitations] = await internalBatch(deps.oltp, "lifecycle", t, (db) => [
    db.execute(sql`with d as (delete from jobs j where j.tenant_id = ${t} and j.type <> 'ERASE_SUBJECT'
                     and exists (select 1 from jsonb_array_elements_text(${JSON.stringify(mentioned)}::jsonb) m
                                 where position(lower(m.value) in lower(j.payload::text || coalesce(j.last_error, ''))) > 0)
                     returning 1) select count(*)::int as n from d`),
    db.execute(sql`with d as (delete from emails where tenant_id = ${t} and id in ${ids(refs.emailIds)} returning 1) select count(*)::int as n from d`),
    db.execute(sql`with d as (delete from leads where tenant_id = ${t} and id in ${ids(refs.leadIds)} returning 1) select count(*)::int as n from d`),
    db.execute(sql`with d as (delete from users where tenant_id = ${t} and id in ${ids(refs.userIds)} returning 1) select count(*)::int as n from d`),
    // The opt-out outlives the person's data: the suppression entry loses its address and keeps its keyed hash.
    db.execute(sql`with d as (update suppressions set address = null, erased_at = now()
                              where tenant_id = ${t} and address = lower(${row.subjectEmail ?? null}::text) returning 1)
                   select count(*)::int as n from d`),
    // Invitations to the address (open or closed): they hold it until pruned.
    db.execute(sql`with d as (delete from invitations where tenant_id = ${t} and email = lower(${row.subjectEmail ?? ""}) returning 1) select count(*)::int as n from d`),
    step(db, row.id, "oltp", {}),
  ]);
  return {
    jobs: countOf(jobs),
    emails: countOf(emails),
    leads: countOf(leads),
    users: countOf(users),
    suppressionsKeptAsHash: countOf(suppressed),
    invitations: countOf(invitations),
  };
}

/**
 * What erasure deliberately does not search, stated in every receipt (docs/lifecycle.md, "What erasure does not
 * search"). Other people's emails are the tenant's record of what it sent them: rewriting their bodies would alter
 * that record and, as bodies are content-addressed, deduplicated and compressed against shared templates, bytes
 * that other emails share; reading every body would cost a read of all the tenant's content per erasure, and the
 * search index covers only a prefix of each body, so a search could not promise to find every mention.
 */
export const notSearched = [
  {
    what: "bodies and attachments of other people's emails that mention the address",
    why: "they are the tenant's record of what it sent to others, stored content-addressed and shared; the tenant can find them with content.search and delete those emails",
  },
] as const;

type StepName = "content" | "files" | "notifications" | "olap" | "redis" | "oltp";
const stepOrder: StepName[] = ["content", "files", "notifications", "olap", "redis", "oltp"];

/**
 * The ERASE_SUBJECT handler. Each step is idempotent and is recorded in erasure_requests when it has
 * finished, so a retry (a tier was down, the worker died) skips what is done and redoes at most the
 * step that was interrupted. The last transaction writes the receipt, forgets the address and records
 * the RECORD_AUDIT job that puts the receipt in OLAP's audit log.
 */
export async function runErasure(deps: ErasureDeps, requestId: string, tenantId: string, options: { platformWide: boolean } = { platformWide: false }): Promise<ErasureRow> {
  let row = await loadRequest(deps.oltp, tenantId, requestId);
  if (!row) throw new AppError("VALIDATION_FAILED", "Unknown erasure request", { details: [{ path: "requestId", message: "not found" }] });
  if (row.status === "completed") return row;
  row = await resolveSubject(deps, row);
  const refs = row.refs!;
  const runners: Record<StepName, () => Promise<Record<string, number>>> = {
    content: () => eraseContent(deps, row!, refs),
    files: () => eraseSubjectFiles(deps, tenantId, row!.subjectEmail),
    notifications: () => eraseNotifications(deps, row!, refs, options.platformWide),
    olap: () => eraseOlap(deps, row!, refs),
    redis: () => eraseRedis(deps, row!, refs, options.platformWide),
    oltp: () => eraseOltp(deps, row!, refs),
  };
  for (const name of stepOrder) {
    if ((row.steps as Record<string, unknown>)[name]) continue;
    const counts = await runners[name]();
    // The OLTP step records itself in its own transaction; its counts are added here.
    await internalBatch(deps.oltp, "lifecycle", tenantId, (db) => [step(db, requestId, name, counts)]);
  }
  const done = (await loadRequest(deps.oltp, tenantId, requestId))!;
  const tiers = Object.fromEntries(stepOrder.map((name) => [name, (done.steps as Record<string, { counts?: unknown }>)[name]]));
  const { services } = deps;
  const keptAsHash = Number((tiers.oltp as { counts?: Record<string, unknown> } | undefined)?.counts?.suppressionsKeptAsHash ?? 0);
  const receipt = {
    subjectDigest: done.subjectDigest,
    requestedAt: done.createdAt,
    completedAt: services.clock.now().toISOString(),
    tiers,
    notSearched,
    ...(keptAsHash > 0
      ? { suppression: { keptAsHash, note: "The address was removed from the suppression list; a keyed hash of it is kept so the opt-out is still honoured." } }
      : {}),
  };
  const requester = { tenantId, userId: done.requestedBy, role: "admin" as const };
  const audit = services.audit.prepare(requester, {
    actor: { userId: done.requestedBy, role: "admin", tenantId },
    action: "subject.erase",
    target: { type: "erasure_request", id: requestId },
    tenantId,
    details: receipt,
  });
  const [finished] = await internalBatch(deps.oltp, "lifecycle", tenantId, (db) => [
    db.execute(sql`update erasure_requests set status = 'completed', subject_email = null, subject_user_id = null, refs = null,
                     receipt = ${JSON.stringify(receipt)}::jsonb, completed_at = now(), steps = steps - 'contentKeys'
                   where id = ${requestId} and status <> 'completed' returning *`),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return rowsOf(finished)[0] ? toRow(rowsOf(finished)[0]!) : done;
}

/** GDPR erasure of one subject across every tier; resumable from erasure_requests' step record. */
export const eraseSubjectJob = defineJob({
  type: "ERASE_SUBJECT",
  // platformWide: set only for an operator's request (see requestErasure); older messages without it are tenant-scoped.
  payload: z.object({ requestId: z.uuid(), platformWide: z.boolean().default(false) }).strict(),
  queue: "normal",
  ledger: true,
  // At most the normal queue's max_retries + 1 (wrangler.toml): the queue must not give up before the ledger does.
  maxAttempts: 6,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services }) => {
    if (!tenantId) throw new AppError("VALIDATION_FAILED", "ERASE_SUBJECT needs a tenant");
    const row = await runErasure(erasureDeps(services), payload.requestId, tenantId, { platformWide: payload.platformWide });
    return { progress: { requestId: payload.requestId, status: row.status } };
  },
});

/**
 * Portability: the subject's data as JSON before erasure: the lead or user row, their emails with
 * events and content, and the notifications and tenant system events that are theirs or mention them.
 * At most 100 emails' content is included.
 */
export async function exportSubject(
  deps: { oltp: TierStore; notifications: TierStore; content: ContentReadDeps; now: Date },
  scope: TenantScope,
  subject: ErasureSubject,
): Promise<Record<string, unknown>> {
  const t = scope.tenantId;
  const [users, leads] = await tenantBatch(deps.oltp, scope, (db) => [
    db.execute(sql`select id, email, name, role, created_at from users where tenant_id = ${t}
                   and (id = ${subject.userId ?? null}::uuid or email = lower(${subject.email ?? null}::text))`),
    db.execute(sql`select * from leads where tenant_id = ${t} and email = lower(coalesce(${subject.email ?? null}::text,
                     (select email from users where tenant_id = ${t} and id = ${subject.userId ?? null}::uuid)))`),
  ]);
  const user = rowsOf(users)[0] ?? null;
  const lead = rowsOf(leads)[0] ?? null;
  if (!user && !lead) throw new AppError("NOT_FOUND", "No lead or user with this address or id in the tenant");
  const [emails, events] = lead
    ? await tenantBatch(deps.oltp, scope, (db) => [
        db.execute(sql`select * from emails where tenant_id = ${t} and lead_id = ${String(lead.id)} order by created_at limit 1000`),
        db.execute(sql`select ev.email_id, ev.type, ev.occurred_at, ev.details from email_events ev
                       join emails e on e.tenant_id = ev.tenant_id and e.id = ev.email_id
                       where ev.tenant_id = ${t} and e.lead_id = ${String(lead.id)} order by ev.occurred_at`),
      ])
    : [{ rows: [] }, { rows: [] }];
  const emailRows = rowsOf(emails);
  const content = await Promise.all(
    emailRows.slice(0, 100).map(async (e) => {
      if (!String(e.content_storage_key).startsWith("emails/")) return null;
      return getEmailContent(deps.content, scope, String(e.id)).catch(() => null);
    }),
  );
  // What erasure deletes from the notifications database is what the export shows: the user's notifications and
  // every notification and tenant system event that names the user or mentions the address (eraseNotifications).
  const address = String(lead?.email ?? user?.email ?? "\u0000").toLowerCase();
  const userIds = JSON.stringify(user ? [String(user.id)] : []);
  const mentions = (text: ReturnType<typeof sql>) => sql`position(${address} in lower(${text})) > 0`;
  const [notifications, systemEvents] = await internalBatch(deps.notifications, "system", t, (db) => [
    db.execute(sql`select id, user_id, type, title, message, data, channel, is_read, created_at from notifications n
                   where n.tenant_id = ${t}
                     and (n.user_id in (select value::uuid from jsonb_array_elements_text(${userIds}::jsonb))
                          or ${mentions(sql`n.title || ' ' || n.message || ' ' || n.data::text`)})
                   order by created_at`),
    db.execute(sql`select id, event_type, severity, description, details, created_at from admin_system_events e
                   where e.tenant_id = ${t}
                     and (e.user_id in (select value::uuid from jsonb_array_elements_text(${userIds}::jsonb))
                          or ${mentions(sql`e.description || ' ' || e.details::text`)})
                   order by created_at`),
  ]);
  return {
    exportedAt: deps.now.toISOString(),
    tenantId: t,
    user,
    lead,
    emails: emailRows.map((e, i) => ({ ...e, content: content[i] ?? null, events: rowsOf(events).filter((ev) => ev.email_id === e.id) })),
    notifications: rowsOf(notifications),
    systemEvents: rowsOf(systemEvents),
  };
}
