// OLAP tier router (analytics reads, the audit log); procedures arrive with the OLAP issue.
import { router } from "../../trpc/trpc";

export const analyticsRouter = router({});
