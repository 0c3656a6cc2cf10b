// Content tier router (R2 bodies and attachments); procedures arrive with the content issue.
import { router } from "../../trpc/trpc";

export const contentRouter = router({});
