// Row helpers for raw SQL results over the Neon HTTP driver, which hands timestamps back as Postgres text.
import { z } from "zod";
import { AppError } from "../../../core/errors";

/** Postgres renders timestamptz as "2026-01-02 03:04:05.678+00"; clients get ISO 8601. */
export function isoTimestamp(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  const text = String(value)
    .replace(" ", "T")
    .replace(/([+-]\d{2})$/, "$1:00");
  return new Date(text).toISOString();
}

export const isoOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : isoTimestamp(value));

/** Rows of a raw `db.execute` inside a batch (the driver's full result). */
export const rowsOf = (result: unknown): Record<string, unknown>[] => (result as { rows: Record<string, unknown>[] }).rows;

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

/** Keyset cursor over (created_at, id), newest first: opaque to clients, checked on the way in. */
const cursorShape = z.object({ t: z.iso.datetime({ offset: true }), id: z.uuid() });
export type Cursor = z.infer<typeof cursorShape>;

export function encodeCursor(createdAt: string, id: string): string {
  return btoa(JSON.stringify({ t: createdAt, id })).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor(text: string): Cursor {
  try {
    const json = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const cursor = cursorShape.parse(JSON.parse(json));
    // The shape check lets through impossible dates (month 13) that Postgres would reject.
    if (new Date(cursor.t).toISOString().slice(0, 19) !== cursor.t.slice(0, 19)) throw new Error("impossible date");
    return cursor;
  } catch {
    throw new AppError("VALIDATION_FAILED", "The cursor is malformed; pass back a nextCursor from a previous page", {
      details: [{ path: "cursor", message: "malformed cursor" }],
    });
  }
}
