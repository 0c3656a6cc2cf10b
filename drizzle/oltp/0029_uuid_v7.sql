-- UUIDv7 (RFC 9562) for the ids of rows inserted in bulk: 48 bits of Unix time in milliseconds, then the version and
-- variant bits and 74 random bits (a v4's, with its version nibble turned from 4 into 7). PostgreSQL has uuidv7()
-- from version 18 only. New keys of a batch land together at the right edge of the id index (src/platform/ids.ts).
CREATE OR REPLACE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid()) placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;--> statement-breakpoint
ALTER TABLE "email_events" ALTER COLUMN "id" SET DEFAULT uuid_v7();--> statement-breakpoint
ALTER TABLE "emails" ALTER COLUMN "id" SET DEFAULT uuid_v7();--> statement-breakpoint
ALTER TABLE "jobs" ALTER COLUMN "id" SET DEFAULT uuid_v7();