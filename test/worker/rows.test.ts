// Row helpers: isoTimestamp's text fast path gives what Date gives, for every UTC timestamptz Postgres renders.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoTimestamp } from "../../src/platform/rows";
import { oltpSql } from "../support/factories";

/** What Date makes of Postgres's text (the path every value took before the fast path). */
const throughDate = (text: string) => new Date(text.replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")).toISOString();

/** Postgres's rendering of a UTC timestamptz: microseconds, trailing zeros dropped, no fraction when it is zero. */
function postgresText(at: Date, extraMicros: number): string {
  const iso = at.toISOString();
  const fraction = `${iso.slice(20, 23)}${String(extraMicros).padStart(3, "0")}`.replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction ? `.${fraction}` : ""}+00`;
}

describe("isoTimestamp", () => {
  it("property: the text fast path equals the Date path for UTC values, to the millisecond", () => {
    const date = fc.date({ min: new Date("1000-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true });
    fc.assert(
      fc.property(date, fc.integer({ min: 0, max: 999 }), (at, micros) => {
        const text = postgresText(at, micros);
        expect(isoTimestamp(text)).toBe(throughDate(text));
        expect(isoTimestamp(text)).toBe(at.toISOString());
      }),
      { numRuns: 2000 },
    );
  });

  it("other offsets and Date values go through Date; a value read from Postgres comes out as ISO 8601", async () => {
    expect(isoTimestamp("2026-01-02 03:04:05.5+02")).toBe("2026-01-02T01:04:05.500Z");
    expect(isoTimestamp(new Date("2026-01-02T03:04:05.678Z"))).toBe("2026-01-02T03:04:05.678Z");
    const sql = oltpSql();
    const [row] = await sql`select '2026-01-02 03:04:05.123456+00'::timestamptz as at, now() as now`;
    expect(isoTimestamp(row!.at)).toBe("2026-01-02T03:04:05.123Z");
    expect(isoTimestamp(row!.now)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});
