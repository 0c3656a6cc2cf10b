// Keyset pagination shared by every tier: one opaque cursor codec, page inputs, "not found" for empty results.
import { sql, type AnyColumn, type SQL } from "drizzle-orm";
import { z } from "zod";
import { AppError } from "./errors";

/** Bulk operations take at most this many items per call: one statement, one round trip, bounded cost. */
export const maxBulkItems = 1000;

export const pageInput = {
  cursor: z.string().max(320).optional(),
  limit: z.number().int().min(1).max(100).default(25),
};

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * The position of the last row served, (created_at, id), newest first. The time is kept as the text
 * Postgres gave (microseconds where the column has them), so no row is skipped or repeated at a page edge.
 */
const cursorShape = z.object({ t: z.iso.datetime({ offset: true }), id: z.uuid() });
export type Cursor = z.infer<typeof cursorShape>;

export function encodeCursor(at: Date | string, id: string): string {
  const t = at instanceof Date ? at.toISOString() : at;
  return btoa(JSON.stringify({ t, id })).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
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

/** Rows after the cursor in newest-first order; matches indexes on (tenant_id, created_at, id). */
export function afterCursor(createdAt: AnyColumn, id: AnyColumn, cursor: string | undefined): SQL | undefined {
  if (!cursor) return undefined;
  const position = decodeCursor(cursor);
  return sql`(${createdAt}, ${id}) < (${position.t}::timestamptz, ${position.id}::uuid)`;
}

/** Callers fetch limit + 1 rows; the extra one only says whether another page exists. */
export function toPage<T extends { createdAt: Date | string; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
}

export function found<T>(row: T | undefined, what: string): T {
  if (row === undefined) throw new AppError("NOT_FOUND", `${what} not found`);
  return row;
}
