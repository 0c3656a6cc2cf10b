// drizzle-kit config for the olap database: schema in src/tiers/olap, migrations in drizzle/olap.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/tiers/olap/schema.ts",
  out: "./drizzle/olap",
  entities: { roles: false },
  // Only `drizzle-kit migrate` needs it: the owner connection string of this database.
  ...(process.env.DATABASE_URL ? { dbCredentials: { url: process.env.DATABASE_URL } } : {}),
});
