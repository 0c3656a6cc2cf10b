// OLTP tier tasks run by the cron triggers: domain re-checks, email event and invitation retention.
import { sql } from "drizzle-orm";
import { defineCron } from "../../platform/cron";
import { internalBatch } from "../../platform/db";
import { rowsOf } from "../../platform/rows";
import { emailEventRetentionDays, invitationRetentionDays } from "./schema";
import { recheckDomains } from "./services/domains";

/** Bounds one run's work; a backlog drains over successive nights. */
const pruneBatch = 50_000;

export const oltpCrons = [
  /** Sending domains' DNS records, looked at again: pending ones may verify, verified ones whose records vanished are flagged. */
  defineCron({
    name: "oltp.recheckDomains",
    schedule: "pruning",
    async run(services) {
      services.logger.info("re-checked domains", await recheckDomains(services));
    },
  }),
  /**
   * Deletes email events past retention in every tenant. No tenant context is set: the `maintenance`
   * role is admitted by the email_events_retention policy, and for old rows only.
   */
  defineCron({
    name: "oltp.pruneEmailEvents",
    schedule: "pruning",
    async run(services) {
      const [result] = await internalBatch(services.store("oltp"), "maintenance", null, (db) => [
        db.execute(sql`with pruned as (
                         delete from email_events where id in (
                           select id from email_events
                           where occurred_at < now() - make_interval(days => ${emailEventRetentionDays})
                           limit ${pruneBatch})
                         returning 1)
                       select count(*)::int as deleted from pruned`),
      ]);
      services.logger.info("pruned email events", { deleted: rowsOf(result)[0]?.deleted ?? 0, retentionDays: emailEventRetentionDays });
    },
  }),
  /** Closed invitations (accepted or expired) hold an address: deleted once past retention, in every tenant. */
  defineCron({
    name: "oltp.pruneInvitations",
    schedule: "pruning",
    async run(services) {
      const [result] = await internalBatch(services.store("oltp"), "maintenance", null, (db) => [
        db.execute(sql`with pruned as (
                         delete from invitations
                         where coalesce(accepted_at, expires_at) < now() - make_interval(days => ${invitationRetentionDays})
                         returning 1)
                       select count(*)::int as deleted from pruned`),
      ]);
      services.logger.info("pruned invitations", { deleted: rowsOf(result)[0]?.deleted ?? 0, retentionDays: invitationRetentionDays });
    },
  }),
];
