// What tiers raise for other tiers to keep: audit entries (kept by OLAP) and system events (kept by notifications),
// as interfaces the owning tiers implement and the root wires into the services context.
import type { SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import type { TenantScope } from "./db";

export const severities = ["low", "medium", "high", "critical"] as const;
export type Severity = (typeof severities)[number];

export interface SystemEventInput {
  eventType: string;
  severity: Severity;
  description: string;
  details?: Record<string, unknown> | undefined;
  /** NULL: platform-wide (operators and internal services only). */
  tenantId?: string | null | undefined;
  userId?: string | null | undefined;
  /** Events with the same key (per tenant, or platform-wide) while one is open count as repeats of it. */
  dedupKey?: string | undefined;
}

/** Raises a high-signal condition on the incident board (implemented by the notifications tier). */
export interface SystemEvents {
  /** `dedupKey` names the condition: an ongoing incident stays one open row whose occurrences grow. */
  raise(input: SystemEventInput & { dedupKey: string }): Promise<void>;
  /**
   * For callers whose own work must not be undone by the incident board being down (a dead job, a
   * paused mailbox): a failure to raise is logged with `context`, never thrown.
   */
  raiseQuietly(input: SystemEventInput & { dedupKey: string }, context: Record<string, unknown>): Promise<void>;
}

/** Where an audited request came from; null outside a request (cron, queue). */
export interface RequestOrigin {
  ip: string | null;
  userAgent: string | null;
}

export interface AuditEntry {
  /** Who acted: a user (or API key) id, its role and its own tenant (an operator's differs from the target's). */
  actor: { userId: string; role: string; tenantId: string | null };
  /** `<area>.<verb>`, e.g. `apiKey.revoke`, `campaign.pause`, `job.redrive`. */
  action: string;
  target: { type: string; id?: string | null | undefined };
  /** The tenant whose object was acted on; the actor's own when omitted. */
  tenantId?: string | null | undefined;
  /** Small and free of secrets: what changed (new role, new status, names). */
  details?: Record<string, unknown> | undefined;
}

export interface PreparedAudit {
  /** The ledger row, for the action's own tenantBatch: it commits, or not, with the action. */
  insert(db: NeonHttpDatabase): BatchItem<"pg">;
  /** Sends the job after the commit, off the response path; a lost send is healed by the relay. */
  sendAfterCommit(): void;
}

/** Compliance entries of admin actions (implemented by the OLAP tier, carried by the job runtime). */
export interface AuditEmitter {
  /**
   * Entries for a service's own batch. `when` (SQL, evaluated after the action's statements in the same
   * transaction) keeps them only if the action took effect, e.g. the row it acted on exists.
   */
  prepare(scope: TenantScope, entries: AuditEntry | AuditEntry[], when?: SQL): PreparedAudit;
  /** The common case: a caller's admin action on an object of its own tenant. */
  action(scope: TenantScope, action: string, target: AuditEntry["target"], details?: Record<string, unknown>, when?: SQL): PreparedAudit;
  /**
   * Redrives: which jobs were redriven, and their tenants, are known only inside the redrive's transaction,
   * so this insert (placed after the redrive's UPDATE in the same batch) reads them from the rows it changed.
   */
  redrives(scope: TenantScope, jobIds: string[]): PreparedAudit;
  /** For tiers that must keep working while OLTP (and so the ledger) is down: straight to the queue. */
  direct(entry: AuditEntry): Promise<void>;
}

/** The actor of a tenant-scoped caller. */
export const actorOf = (scope: TenantScope): AuditEntry["actor"] => ({ userId: scope.userId, role: scope.role, tenantId: scope.tenantId });
