// Plans: the limits a tenant is provisioned with. Stored on the tenant row at provisioning (an operator may
// change a tenant's plan later); API-key expiries are read from the plan when a key is created.
export const planNames = ["free", "starter", "pro"] as const;
export type PlanName = (typeof planNames)[number];

export interface Plan {
  /** Members and pending invitations together. */
  seats: number;
  mailboxes: number;
  /** Sends per day across all of the tenant's mailboxes. */
  dailySends: number;
  /** Content bytes as stored (bodies and attachments, compressed and deduplicated): emails.create beyond it is STORAGE_LIMIT_EXCEEDED. */
  storageBytes: number;
  /** API keys: the expiry a key gets when none is asked for, and the longest one may ask for. */
  apiKeyDays: { default: number; max: number };
}

const GiB = 1024 ** 3;

export const plans: Record<PlanName, Plan> = {
  free: { seats: 3, mailboxes: 2, dailySends: 200, storageBytes: 1 * GiB, apiKeyDays: { default: 30, max: 90 } },
  starter: { seats: 10, mailboxes: 10, dailySends: 2_000, storageBytes: 20 * GiB, apiKeyDays: { default: 90, max: 365 } },
  pro: { seats: 50, mailboxes: 100, dailySends: 20_000, storageBytes: 200 * GiB, apiKeyDays: { default: 90, max: 730 } },
};

/** Tenants stored with a plan name this code no longer knows get the smallest plan's limits. */
export const planOf = (name: string): Plan => plans[name as PlanName] ?? plans.free;
