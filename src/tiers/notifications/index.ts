// The notifications tier's public face: its routers, job, cron tasks and retention rules, the system-event raiser it
// implements for every tier, and the unread badge the browser route serves.
import { notificationsCrons } from "./cron";
import { notificationsJobs } from "./jobs";
import { notificationsRetention } from "./retention";
import { adminRouter, notificationsRouter } from "./router";

export const notifications = {
  routers: { notifications: notificationsRouter, admin: adminRouter },
  jobs: notificationsJobs,
  crons: notificationsCrons,
  retention: notificationsRetention,
};

export { notificationsConfig, unreadCountCacheControl } from "./config";
export { UnreadBadge } from "./badge";
export { notificationDeps } from "./deps";
export { openLiveBadge } from "./services/live";
export { systemEvents } from "./emitter";
export { unreadCount, unreadLookup } from "./services/notifications";
export { invalidateUnread } from "./services/unread-cache";
export { eraseSubjectKeys } from "./services/subject-keys";
