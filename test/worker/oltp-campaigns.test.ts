import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { campaignWithSteps, expectCode, fakeEmail, rejection } from "../support/oltp";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("campaigns", () => {
  it("creates a draft with its schedule window and time zone; status and tenant in the input are ignored", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token);
    const campaign = await client.campaigns.create.mutate({
      name: "Launch",
      timeZone: "Europe/Paris",
      windowStartMinute: 480,
      windowEndMinute: 1080,
      sendDays: [1, 2, 3],
      dailyLimit: 250,
      ...({ status: "running", tenantId: crypto.randomUUID() } as object),
    });
    expect(campaign).toMatchObject({ name: "Launch", status: "draft", timeZone: "Europe/Paris", sendDays: [1, 2, 3], dailyLimit: 250, tenantId: tenant.id });
  });

  it("rejects an unknown time zone, a window that ends before it starts and repeated days", async () => {
    const client = trpcClient((await createTenant()).member.token);
    await expectCode(client.campaigns.create.mutate({ name: "X", timeZone: "Mars/Olympus" }), "VALIDATION_FAILED");
    await expectCode(client.campaigns.create.mutate({ name: "X", windowStartMinute: 600, windowEndMinute: 500 }), "VALIDATION_FAILED");
    await expectCode(client.campaigns.create.mutate({ name: "X", sendDays: [1, 1] }), "VALIDATION_FAILED");
  });

  it("startsAt is an ISO 8601 instant with an offset: kept to the millisecond, cleared with null, anything else refused", async () => {
    const client = trpcClient((await createTenant()).member.token);
    const campaign = await client.campaigns.create.mutate({ name: "Scheduled", startsAt: "2026-12-01T09:30:00.123+02:00" });
    expect(campaign.startsAt).toBe("2026-12-01T07:30:00.123Z");
    const cleared = await client.campaigns.update.mutate({ id: campaign.id, startsAt: null });
    expect(cleared.startsAt).toBeNull();
    // A bare date, a time with no offset and a number were accepted by the former z.coerce.date(); now each is refused.
    for (const startsAt of ["2026-12-01", "2026-12-01T09:30:00", 1764581400000 as unknown as string]) {
      await expectCode(client.campaigns.create.mutate({ name: "X", startsAt }), "VALIDATION_FAILED");
    }
  });

  it("get returns the campaign with its ordered steps and enrolment count in one round trip", async () => {
    const tenant = await createTenant();
    const campaign = await campaignWithSteps(tenant.member.token, 3);
    const client = trpcClient(tenant.member.token, { batch: false });
    await resetRoundTrips();
    const full = await client.campaigns.get.query({ id: campaign.id });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(full.steps.map((s) => s.position)).toEqual([0, 1, 2]);
    expect(full.steps[1]).toMatchObject({ delayHours: 24, variants: [{ label: "A" }, { label: "B" }] });
    expect(full.enrolledLeads).toBe(0);
  });

  it("walks the state machine and refuses illegal transitions with CONFLICT naming the current status", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const empty = await campaignWithSteps(tenant.member.token, 0);
    const noSteps = await rejection(client.campaigns.transition.mutate({ id: empty.id, action: "start" }));
    expect(noSteps).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });

    const campaign = await campaignWithSteps(tenant.member.token, 1);
    const move = (action: "schedule" | "start" | "pause" | "resume" | "complete") =>
      client.campaigns.transition.mutate({ id: campaign.id, action });
    expect(await rejection(move("schedule"))).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
    await client.campaigns.update.mutate({ id: campaign.id, startsAt: new Date(Date.now() + 3600_000).toISOString() });
    expect((await move("schedule")).status).toBe("scheduled");
    expect((await move("start")).status).toBe("running");
    await expectCode(move("resume"), "CONFLICT");
    expect((await move("pause")).status).toBe("paused");
    expect((await move("resume")).status).toBe("running");
    expect((await move("complete")).status).toBe("completed");
    for (const action of ["start", "resume", "pause", "schedule", "complete"] as const) {
      const refused = await rejection(move(action));
      expect(refused).toMatchObject({ code: "CONFLICT", httpStatus: 409, details: { status: "completed", action } });
    }
    await expectCode(client.campaigns.transition.mutate({ id: campaign.id, action: "restart" as never }), "VALIDATION_FAILED");
    await expectCode(client.campaigns.transition.mutate({ id: crypto.randomUUID(), action: "pause" }), "NOT_FOUND");
  });

  it("settings and steps can change only while draft or paused", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const campaign = await campaignWithSteps(tenant.member.token, 1);
    expect((await client.campaigns.update.mutate({ id: campaign.id, name: "Renamed" })).name).toBe("Renamed");
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await expectCode(client.campaigns.update.mutate({ id: campaign.id, dailyLimit: 5 }), "CONFLICT");
    const steps = [{ delayHours: 0, variants: [{ label: "A", subject: "s", bodyStorageKey: "k", weight: 1 }] }];
    await expectCode(client.campaigns.setSteps.mutate({ id: campaign.id, steps }), "CONFLICT");
    expect((await client.campaigns.get.query({ id: campaign.id })).steps[0]?.variants).toHaveLength(2);
    await client.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
    const saved = await client.campaigns.setSteps.mutate({ id: campaign.id, steps: [...steps, { ...steps[0]!, delayHours: 48 }] });
    expect(saved.map((s) => [s.position, s.delayHours])).toEqual([[0, 0], [1, 48]]);
  });

  it("lists with a status filter and cursor", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const drafts = await Promise.all([1, 2, 3].map(() => campaignWithSteps(tenant.member.token, 1)));
    await client.campaigns.transition.mutate({ id: drafts[0]!.id, action: "start" });
    const running = await client.campaigns.list.query({ status: "running" });
    expect(running.items.map((c) => c.id)).toEqual([drafts[0]!.id]);
    const first = await client.campaigns.list.query({ status: "draft", limit: 1 });
    const second = await client.campaigns.list.query({ status: "draft", limit: 1, cursor: first.nextCursor! });
    expect(new Set([...first.items, ...second.items].map((c) => c.id))).toEqual(new Set([drafts[1]!.id, drafts[2]!.id]));
    expect(second.nextCursor).toBeNull();
  });

  it("enrols 1,000 leads in one call and one round trip, skipping unknown, already enrolled and foreign leads", async () => {
    const tenant = await createTenant();
    const other = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const { ids } = await client.leads.bulkUpsert.mutate({ leads: Array.from({ length: 998 }, () => ({ email: fakeEmail() })) });
    const foreign = await trpcClient(other.member.token).leads.create.mutate({ email: fakeEmail() });
    const campaign = await campaignWithSteps(tenant.member.token, 1);
    await resetRoundTrips();
    const result = await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [...ids, foreign.id, crypto.randomUUID()] });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(result).toEqual({ enrolled: 998, skipped: 2 });
    expect(await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids.slice(0, 10) })).toEqual({ enrolled: 0, skipped: 10 });
    expect((await client.campaigns.get.query({ id: campaign.id })).enrolledLeads).toBe(998);
    await expectCode(client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: Array.from({ length: 1001 }, () => crypto.randomUUID()) }), "VALIDATION_FAILED");
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await client.campaigns.transition.mutate({ id: campaign.id, action: "complete" });
    await expectCode(client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids.slice(0, 1) }), "CONFLICT");
  });
});
