// Jobs tier router (ledger reads, dead-letter redrive); procedures arrive with the jobs issue.
import { router } from "../../trpc/trpc";

export const jobsRouter = router({});
