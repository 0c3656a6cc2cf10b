// Row helpers for raw SQL results over the Neon HTTP driver, which hands timestamps back as Postgres text.
import { AppError } from "./errors";

/** A UTC timestamptz as Postgres renders it: date, time, up to 6 fractional digits, "+00". */
const utcText = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/;

/**
 * Postgres renders timestamptz as "2026-01-02 03:04:05.678+00"; clients get ISO 8601. A UTC value (the sessions'
 * time zone) is rewritten as text, to the millisecond as Date would give it: a list of rows has several per row,
 * and parsing each through Date was a visible share of a request's CPU. Anything else goes through Date.
 */
export function isoTimestamp(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  const utc = typeof value === "string" ? utcText.exec(value) : null;
  if (utc) return `${utc[1]}T${utc[2]}.${(utc[3] ?? "").padEnd(3, "0").slice(0, 3)}Z`;
  const text = String(value)
    .replace(" ", "T")
    .replace(/([+-]\d{2})$/, "$1:00");
  return new Date(text).toISOString();
}

export const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : isoTimestamp(value));

/** Items grouped by a key, each group in the items' order, groups in order of first appearance. */
export function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Rows of a raw `db.execute` inside a batch (the driver's full result). */
export const rowsOf = (result: unknown): Record<string, unknown>[] => (result as { rows: Record<string, unknown>[] }).rows;

/** A JSON array of ids as one bound parameter, expanded in SQL: one statement whatever the count. */
export const idList = (ids: string[]): string => JSON.stringify(ids);

/** A JSON field's serialized size, refused with PAYLOAD_TOO_LARGE above its limit. */
export function boundedJson(value: Record<string, unknown> | undefined, limitBytes: number, field: string): string {
  const json = JSON.stringify(value ?? {});
  const bytes = new TextEncoder().encode(json).byteLength;
  if (bytes > limitBytes) {
    throw new AppError("PAYLOAD_TOO_LARGE", `${field} is ${bytes} bytes; the limit is ${limitBytes}`, {
      details: { field, limitBytes, actualBytes: bytes },
    });
  }
  return json;
}
