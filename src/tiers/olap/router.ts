// OLAP tier router `analytics`: dashboard reads of the aggregates, each one OLAP round trip carrying its freshness.
import { z } from "zod";
import { authedProcedure, router } from "../../trpc/trpc";
import { campaignPerformance } from "./services/campaign-performance";

/** A dashboard looks at most a year at a time; a wider range is a report, not a live read. */
const maxRangeDays = 366;
const isoDay = z.iso.date();
const dayRange = z
  .object({ from: isoDay, to: isoDay })
  .refine((r) => r.from <= r.to, { message: "from must not be after to", path: ["from"] })
  .refine((r) => (Date.parse(r.to) - Date.parse(r.from)) / 86_400_000 < maxRangeDays, {
    message: `the range spans at most ${maxRangeDays} days`,
    path: ["to"],
  });

export const analyticsRouter = router({
  campaignPerformance: authedProcedure
    .input(z.object({ campaignId: z.uuid() }).and(dayRange))
    .query(({ ctx, input }) => campaignPerformance(ctx.store("olap"), ctx.scope, input)),
});
