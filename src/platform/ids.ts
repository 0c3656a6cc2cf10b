// Ids of rows that are inserted in bulk and indexed by id alone (emails, their events, the job ledger): UUIDv7 (RFC
// 9562), whose first 48 bits are the creation time in milliseconds. A batch's new keys then land together at the right
// edge of each id index instead of on as many random leaf pages, which matters once those indexes outgrow the
// server's cache (bench:scale, 10 million rows). Still 74 random bits: an id is no easier to guess, and no id is a
// capability here (links and tokens are signed). The database's own default for these tables is `uuid_v7()`
// (drizzle/oltp/0029). Other ids stay random (crypto.randomUUID): nothing is gained where inserts are few. The time in
// an id is the real clock's, not the services clock: it orders insertions for the index, and nothing reads it back.
// Why a library: `uuid` is the maintained implementation of RFC 9562 (its v7 keeps ids monotonic within a millisecond).
import { v7 } from "uuid";

export const timeOrderedId = (): string => v7();
