// Content tier tables, migrated with the OLTP database (drizzle/oltp).
export {};
