// drizzle-kit config for the notifications database: schema in src/tiers/notifications, migrations in drizzle/notifications.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/tiers/notifications/schema.ts",
  out: "./drizzle/notifications",
  entities: { roles: false },
  // Only `drizzle-kit migrate` needs it: the owner connection string of this database.
  ...(process.env.DATABASE_URL ? { dbCredentials: { url: process.env.DATABASE_URL } } : {}),
});
