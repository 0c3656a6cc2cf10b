// Notifications tier schema (Neon, NOTIFICATIONS_DATABASE_URL): tables arrive with the notifications issue.
export {};
