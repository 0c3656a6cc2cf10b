// Notifications tier routers: the notification center and the admin incident board.
import { router } from "../../trpc/trpc";

export const notificationsRouter = router({});
export const adminRouter = router({});
