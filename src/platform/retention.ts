// The shape of a retention rule: each tier declares its own (src/tiers/<tier>/retention.ts); lifecycle reports and renders them all.
import type { DbTier } from "./db";

export type RetentionStore = DbTier | "r2" | "redis";

export interface RetentionRule {
  store: RetentionStore;
  /** A table name, an R2 key prefix or a Redis key family. */
  name: string;
  rule: string;
  /** The cron task (its name, `<tier>.<verb>`) or procedure that enforces the rule. */
  enforcedBy: string;
  /** For tables: the timestamp the report shows the oldest of and the simulation checks the age of. */
  ageColumn?: string;
  /** Rows whose `ageColumn` is older than this many days must not exist after the enforcing task ran (under `where`). */
  maxAgeDays?: number;
  where?: string;
}

