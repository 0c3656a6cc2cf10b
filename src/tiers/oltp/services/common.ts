// Helpers shared by the OLTP services: keyset cursors, "not found" for empty results, bounded inputs.
import { sql, type AnyColumn, type SQL } from "drizzle-orm";
import { z } from "zod";
import { AppError } from "../../../core/errors";

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

interface CursorPosition {
  createdAt: Date;
  id: string;
}

/** Opaque to clients; the (created_at, id) of the last row served. Timestamps are millisecond-exact. */
export function encodeCursor(position: CursorPosition): string {
  return btoa(`${position.createdAt.getTime()}.${position.id}`).replaceAll("=", "");
}

export function decodeCursor(cursor: string): CursorPosition {
  let decoded: string;
  try {
    decoded = atob(cursor);
  } catch {
    throw invalidCursor();
  }
  const match = /^(\d{1,15})\.([0-9a-f-]{36})$/i.exec(decoded);
  if (!match) throw invalidCursor();
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}

const invalidCursor = () =>
  new AppError("VALIDATION_FAILED", "The cursor is invalid; pass back a nextCursor from a previous page", {
    details: [{ path: "cursor", message: "invalid cursor" }],
  });

/** Rows after the cursor in newest-first order; matches indexes on (tenant_id, created_at, id). */
export function afterCursor(createdAt: AnyColumn, id: AnyColumn, cursor: string | undefined): SQL | undefined {
  if (!cursor) return undefined;
  const position = decodeCursor(cursor);
  return sql`(${createdAt}, ${id}) < (${position.createdAt.toISOString()}::timestamptz, ${position.id}::uuid)`;
}

/** Callers fetch limit + 1 rows; the extra one only says whether another page exists. */
export function toPage<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

export function found<T>(row: T | undefined, what: string): T {
  if (row === undefined) throw new AppError("NOT_FOUND", `${what} not found`);
  return row;
}
