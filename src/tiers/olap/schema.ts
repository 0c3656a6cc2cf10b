// OLAP tier schema (Neon, OLAP_DATABASE_URL): aggregate tables arrive with the OLAP issue.
export {};
