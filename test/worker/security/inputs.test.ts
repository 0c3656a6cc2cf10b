// Issue 14, findings 5 and 6, as classes over every procedure of the router: ids are normalised where they are
// keyed, dates have a range, nesting hides nothing from the storability check, and what a caller can make
// Postgres refuse is a client error, never a 500.
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { internalBatch, tenantBatch } from "../../../src/platform/db";
import { createTenant, type TestTenant } from "../../support/factories";
import { store } from "../../support/lifecycle";
import { notificationsTenant, operator } from "../../support/notifications";
import { trpcClient } from "../../support/worker";
import { errorData, expectClientOutcome, inputWith, procedures, proceduresWithFields, send } from "./router-walk";

let operatorToken: string;
let tenant: TestTenant;

beforeAll(async () => {
  operatorToken = (await operator()).token;
  tenant = await createTenant();
});

describe("identifiers are normalised at the edge", () => {
  const withIds = proceduresWithFields("uuid");

  it(`the walk finds the ids of the router's procedures (${withIds.length} procedures)`, () => {
    expect(withIds.length).toBeGreaterThan(30);
    // The walker itself: a schema it cannot see into would hide fields from every check below.
    expect(withIds.find((p) => p.path === "emails.create")?.fields.map((f) => f.path.join("."))).toEqual(
      expect.arrayContaining(["leadId", "mailboxId", "campaignId", "stepId"]),
    );
  });

  for (const procedure of withIds) {
    it(`${procedure.path}: every uuid it accepts comes out lower-cased`, () => {
      const upper = crypto.randomUUID().toUpperCase();
      for (const field of procedure.fields) {
        const where = `${procedure.path} ${field.path.join(".")}`;
        expect(field.pipe, `${where} is not normalised`).not.toBeNull();
        expect(field.pipe!.parse(upper), where).toBe(upper.toLowerCase());
      }
    });
  }

  it("the per-recipient notification limit holds whatever the case of the recipient's id", async () => {
    const t = await notificationsTenant();
    const admin = trpcClient(t.admin.token, { batch: false });
    const spellings = [t.member.id, t.member.id.toUpperCase(), t.member.id.replace(/[a-f]/, (c) => c.toUpperCase())];
    for (let i = 0; i < 30; i++) {
      await admin.notifications.create.mutate({ userId: spellings[i % spellings.length]!, type: "t", title: `n${i}`, message: "m", channel: "in_app" });
    }
    await expect(
      admin.notifications.create.mutate({ userId: t.member.id.toUpperCase(), type: "t", title: "one too many", message: "m", channel: "in_app" }),
    ).rejects.toMatchObject({ data: { code: "RATE_LIMITED" } });
    // And the rows are stored under the one normalised id, which the unread count keys on.
    expect((await trpcClient(t.member.token, { batch: false }).notifications.unreadCount.query()).unread).toBe(30);
  });
});

describe("every date a procedure accepts has a range", () => {
  const withDates = proceduresWithFields("date");

  it(`the walk finds the date inputs (${withDates.length} procedures)`, () => {
    expect(withDates.map((p) => p.path)).toEqual(expect.arrayContaining(["campaigns.create", "emails.recordEvent", "notifications.create"]));
  });

  for (const procedure of withDates) {
    it(`${procedure.path}: years 0 and 10000 are refused at the field with VALIDATION_FAILED; 1970 and 9999 pass the field`, async () => {
      for (const field of procedure.fields) {
        const day = field.node && (field.node as unknown as { _zod: { def: { format?: string } } })._zod.def.format === "date";
        const issuesAt = async (value: string) => {
          const outcome = await send(procedure.path, procedure.type, inputWith(field.path, value), operatorToken);
          expectClientOutcome(`${procedure.path} ${field.path.join(".")}=${value}`, outcome);
          const data = errorData(outcome);
          const details = Array.isArray(data?.details) ? data.details : [];
          return { outcome, data, atField: details.filter((d) => d.path === field.path.join(".")) };
        };
        for (const bad of day ? ["0000-01-01", "1969-12-31"] : ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "+010000-01-01T00:00:00Z"]) {
          const { outcome, data, atField } = await issuesAt(bad);
          expect(outcome.status, `${procedure.path} ${bad}: ${outcome.text.slice(0, 200)}`).toBe(400);
          expect(data?.code).toBe("VALIDATION_FAILED");
          expect(atField.length, `${procedure.path} ${field.path.join(".")}=${bad} was accepted by the field`).toBeGreaterThan(0);
        }
        for (const good of day ? ["1970-01-01", "9999-12-31"] : ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]) {
          expect((await issuesAt(good)).atField, `${procedure.path} ${field.path.join(".")}=${good}`).toEqual([]);
        }
      }
    });
  }

  it("campaigns.create with startsAt in year 0 and emails.recordEvent with occurredAt in year 0 are 400s", async () => {
    const created = await send("campaigns.create", "mutation", { name: "Year zero", startsAt: "0000-01-01T00:00:00Z" }, tenant.admin.token);
    expect(created.status, created.text).toBe(400);
    expect(errorData(created)?.code).toBe("VALIDATION_FAILED");
    const recorded = await send("emails.recordEvent", "mutation", { emailId: crypto.randomUUID(), type: "sent", occurredAt: "0000-01-01T00:00:00Z" }, tenant.admin.token);
    expect(recorded.status, recorded.text).toBe(400);
  });
});

describe("nesting hides nothing", () => {
  const deepWithNul = (depth: number): unknown => {
    let value: unknown = "a\u0000b";
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
    return value;
  };

  for (const { path, type } of procedures) {
    it(`${path}: a NUL 200 levels deep is found and refused before anything else`, async () => {
      const outcome = await send(path, type, { nested: deepWithNul(200) }, operatorToken);
      expectClientOutcome(path, outcome);
      expect(outcome.status, outcome.text.slice(0, 200)).toBe(400);
      const details = errorData(outcome)?.details as Array<{ message?: string }> | undefined;
      expect(details?.[0]?.message, outcome.text.slice(0, 200)).toMatch(/NUL/);
    });
  }

  it("notifications.create with a NUL deep inside data is VALIDATION_FAILED, not a 500", async () => {
    const t = await notificationsTenant();
    const outcome = await send(
      "notifications.create",
      "mutation",
      { userId: t.member.id, type: "t", title: "deep", message: "m", channel: "in_app", data: { nested: deepWithNul(100) } },
      t.admin.token,
    );
    expect(outcome.status, outcome.text.slice(0, 300)).toBe(400);
    expect(errorData(outcome)?.code).toBe("VALIDATION_FAILED");
  });
});

describe("what a caller can make Postgres refuse is a client error", () => {
  const provoke: Array<[string, string, string]> = [
    ["22008", "date/time field out of range", "select '0000-01-01 00:00:00+00'::timestamptz"],
    ["22007", "invalid datetime format", "select 'yesterday-ish'::timestamptz"],
    ["22009", "time zone displacement out of range", "select '2026-01-01 00:00:00+16:00'::timestamptz"],
    ["22023", "invalid parameter value", "select '2026-01-01 00:00:00'::timestamptz at time zone interval '1 day'"],
    ["22P02", "invalid text representation", "select 'not-a-uuid'::uuid"],
    ["22P05/22021", "text Postgres cannot encode", "select convert_from('\\xff'::bytea, 'UTF8')"],
    ["54000", "string too long for tsvector", "select to_tsvector('simple', string_agg(md5(i::text) || md5((i + 1)::text), ' ')) from generate_series(1, 20000) i"],
  ];

  for (const [state, what, statement] of provoke) {
    it(`${state} (${what}) maps to a 4xx code`, async () => {
      const failure = await internalBatch(store("oltp"), "system", null, (db) => [db.execute(sql.raw(statement))]).then(
        () => null,
        (error: unknown) => error as { code?: string; status?: number },
      );
      expect(failure, `${statement} was accepted`).not.toBeNull();
      expect(failure!.code, `${statement} → ${failure!.code}`).not.toBe("INTERNAL");
      expect(failure!.status).toBeGreaterThanOrEqual(400);
      expect(failure!.status).toBeLessThan(500);
    });
  }

  it("a date a tenant's statement cannot hold answers VALIDATION_FAILED through the tenant path too", async () => {
    const failure = await tenantBatch(store("oltp"), { tenantId: tenant.id, userId: tenant.admin.id, role: "admin" }, (db) => [
      db.execute(sql`select ${"0000-01-01T00:00:00Z"}::timestamptz`),
    ]).then(
      () => null,
      (error: unknown) => error as { code?: string },
    );
    expect(failure?.code).toBe("VALIDATION_FAILED");
  });
});
