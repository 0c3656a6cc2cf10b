// Cross-tenant lifecycle work runs through the shared internalBatch ('lifecycle' in OLTP, 'system' / 'analytics' elsewhere).
export { internalBatch } from "../core/db";

export const rowsOf = (result: unknown): Record<string, unknown>[] => (result as { rows: Record<string, unknown>[] }).rows;
