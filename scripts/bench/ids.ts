// Deterministic ids for seeded benchmark data: md5-derived, shaped as version-4 uuids, computed the same way in
// SQL (for set-based seeding) and here (to address rows without reading them back).
import { createHash } from "node:crypto";

/** SQL expression for the uuid of `text` (a SQL text expression). */
export const uuidSql = (text: string) => `(select (substr(h, 1, 12) || '4' || substr(h, 14, 3) || '8' || substr(h, 18))::uuid from md5(${text}) h)`;

/** The same uuid as uuidSql, computed in Node. */
export function uuidOf(text: string): string {
  const h = createHash("md5").update(text).digest("hex");
  const hex = `${h.slice(0, 12)}4${h.slice(13, 16)}8${h.slice(17)}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
