// Domain verification end to end: records published on the local DNS-over-HTTPS endpoint, domains.verify, the re-check cron, and SEND_EMAIL's gate.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createWorker } from "../../src/index";
import { domainRecheck } from "../../src/tiers/oltp/services/domains";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { clockAtUtc, clockedWorker, settableClock } from "../support/clock";
import { publishDnsRecords, setDnsRecords, withdrawDnsRecords } from "../support/dns";
import { createTenant } from "../support/factories";
import { ledgerRow, queueEmail, waitFor } from "../support/jobs";
import { expectCode } from "../support/oltp";
import { queueNames, schedules } from "../support/runtime";
import { trpcClient } from "../support/worker";

const domainName = () => `mail-${crypto.randomUUID().slice(0, 8)}.example.com`;

/** What the provider stand-in received for a recipient. */
async function delivered(to: string): Promise<Array<{ subject: string; headers?: Record<string, string> }>> {
  const response = await fetch(`${env.TEST_PROVIDERS_CONTROL_URL}/_local/email/sent?to=${encodeURIComponent(to)}`);
  return response.json();
}

describe("domain verification", () => {
  it("an email from a mailbox on an unverified domain is never sent; publishing the records and verifying makes it send", async () => {
    const tenant = await createTenant();
    const clock = settableClock(clockAtUtc("12:00").now());
    const worker = clockedWorker(clock);
    const admin = worker.client(tenant.admin.token);
    const domain = await admin.domains.add.mutate({ name: domainName() });
    expect(domain.verificationStatus).toBe("pending");
    const box = await admin.mailboxes.add.mutate({ domainId: domain.id, address: `sales@${domain.name}` });
    const email = await queueEmail(tenant.admin.token, box.id, {}, admin);
    const lead = await admin.leads.get.query({ id: email.leadId });

    await worker.deliver("JOBS_HIGH", queueNames.high);
    expect(await ledgerRow(email.id)).toMatchObject({ status: "pending", attempts: 0, last_error: `The domain ${domain.name} is not verified (pending)` });
    // Verifying before the records exist records what is missing and leaves the domain pending.
    const early = await admin.domains.verify.mutate({ id: domain.id });
    expect(early.verificationStatus).toBe("pending");
    expect(early.dnsResults?.map((r) => [r.purpose, r.found])).toEqual([["spf", false], ["dkim", false], ["dmarc", false]]);
    clock.advance((jobsConfig.sendEmail.inactiveMailboxRetrySeconds + 1) * 1000);
    expect(await worker.deliver("JOBS_HIGH", queueNames.high)).toBe(1);
    expect(await ledgerRow(email.id)).toMatchObject({ status: "pending", last_error: `The domain ${domain.name} is not verified (pending)` });
    expect(await delivered(lead.email)).toEqual([]);

    // A partial publication is not enough: SPF without our include does not count.
    await setDnsRecords(domain.name, "TXT", ["v=spf1 include:_spf.other.example ~all"]);
    await publishDnsRecords(domain.dnsRecords.filter((r) => r.purpose !== "spf"));
    const partial = await admin.domains.verify.mutate({ id: domain.id });
    expect(partial.verificationStatus).toBe("pending");
    expect(partial.dnsResults?.find((r) => r.purpose === "spf")).toMatchObject({ found: false, seen: ["v=spf1 include:_spf.other.example ~all"] });

    // SPF listing other senders besides ours, as real records do, passes.
    await setDnsRecords(domain.name, "TXT", ["google-site-verification=abc", "v=spf1 include:_spf.other.example include:_spf.edp.email ~all"]);
    const verified = await admin.domains.verify.mutate({ id: domain.id });
    expect(verified).toMatchObject({ verificationStatus: "verified" });
    expect(verified.verifiedAt).not.toBeNull();
    expect(verified.dnsResults?.every((r) => r.found)).toBe(true);

    clock.advance((jobsConfig.sendEmail.inactiveMailboxRetrySeconds + 1) * 1000);
    expect(await worker.deliver("JOBS_HIGH", queueNames.high)).toBe(1);
    expect((await admin.emails.get.query({ id: email.id })).status).toBe("sent");
    const received = await delivered(lead.email);
    expect(received).toHaveLength(1);
  });

  it("a second tenant cannot verify a domain another tenant has verified (DOMAIN_TAKEN), and can once it is released", async () => {
    const [first, second] = await Promise.all([createTenant(), createTenant()]);
    const a = trpcClient(first.admin.token, { batch: false });
    const b = trpcClient(second.admin.token, { batch: false });
    const name = domainName();
    const mine = await a.domains.add.mutate({ name });
    // Adding is allowed (a tenant may be preparing a move); DKIM selectors differ per tenant.
    const theirs = await b.domains.add.mutate({ name: name.toUpperCase() });
    expect(theirs.name).toBe(name);
    await publishDnsRecords([...mine.dnsRecords, ...theirs.dnsRecords.filter((r) => r.purpose === "dkim")]);
    expect((await a.domains.verify.mutate({ id: mine.id })).verificationStatus).toBe("verified");
    await expectCode(b.domains.verify.mutate({ id: theirs.id }), "DOMAIN_TAKEN");
    expect((await b.domains.get.query({ id: theirs.id })).verificationStatus).toBe("pending");
    await a.domains.remove.mutate({ id: mine.id });
    expect((await b.domains.verify.mutate({ id: theirs.id })).verificationStatus).toBe("verified");
  });

  it("a verified domain whose records vanish is flagged by the re-check cron, with one system event, and stops sending", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const domain = await admin.domains.add.mutate({ name: domainName() });
    await publishDnsRecords(domain.dnsRecords);
    expect((await admin.domains.verify.mutate({ id: domain.id })).verificationStatus).toBe("verified");
    await withdrawDnsRecords(domain.dnsRecords.filter((r) => r.purpose === "dkim"));

    // The cron looks again once the verified domain's last check is old enough; the hourly run does it.
    const later = settableClock(new Date(Date.now() + (domainRecheck.verifiedEveryHours * 3600 + 60) * 1000));
    const cron = async () => {
      const ctx = createExecutionContext();
      await createWorker(later).scheduled(createScheduledController({ cron: schedules.pruning, scheduledTime: later.now() }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    // Other files' domains share the database and are due too: runs go on (each checks a batch) until ours was looked at.
    const cronUntil = async (status: string) => {
      for (let run = 0; run < 40; run++) {
        await cron();
        const current = await admin.domains.get.query({ id: domain.id });
        if (current.verificationStatus === status) return current;
      }
      throw new Error(`the domain never became ${status}`);
    };
    const flagged = await cronUntil("failed");
    expect(flagged.dnsResults?.find((r) => r.purpose === "dkim")).toMatchObject({ found: false });
    const events = await waitFor(async () => {
      const page = await admin.admin.systemEvents.list.query({ eventType: "domain_records_missing" });
      return page.items.length > 0 ? page.items : undefined;
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ severity: "high", dedupKey: `domain.records_missing:${domain.id}`, details: { domainId: domain.id, missing: ["dkim"] } });

    // A flagged domain's mailbox sends nothing.
    const box = await admin.mailboxes.add.mutate({ domainId: domain.id, address: `hello@${domain.name}` });
    const worker = clockedWorker(later);
    const email = await queueEmail(tenant.admin.token, box.id, {}, worker.client(tenant.admin.token));
    await worker.deliver("JOBS_HIGH", queueNames.high);
    expect(await ledgerRow(email.id)).toMatchObject({ status: "pending", last_error: `The domain ${domain.name} is not verified (failed)` });

    // Republished, the next due check verifies it again; the event is not raised twice.
    await publishDnsRecords(domain.dnsRecords);
    later.advance((domainRecheck.verifiedEveryHours * 3600 + 60) * 1000);
    expect((await cronUntil("verified")).verificationStatus).toBe("verified");
    expect((await admin.admin.systemEvents.list.query({ eventType: "domain_records_missing" })).items).toHaveLength(1);
  });

  it("a resolver that cannot answer leaves the domain as it was and answers SERVICE_UNAVAILABLE", async () => {
    const tenant = await createTenant();
    const domain = await trpcClient(tenant.admin.token, { batch: false }).domains.add.mutate({ name: domainName() });
    const down = clockedWorker(settableClock(new Date()), { DOH_RESOLVER_URL: "http://127.0.0.1:9/dns-query" });
    await expectCode(down.client(tenant.admin.token).domains.verify.mutate({ id: domain.id }), "SERVICE_UNAVAILABLE");
    const after = await trpcClient(tenant.admin.token, { batch: false }).domains.get.query({ id: domain.id });
    expect(after).toMatchObject({ verificationStatus: "pending", checkedAt: null });
  });
});
