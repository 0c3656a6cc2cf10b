// Edge schemas every router shares: identifiers normalised before anything keys on them, dates inside the range the stores hold, sizes that answer 413.
import { z } from "zod";
import { AppError } from "./errors";

/**
 * A UUID, lower-cased. UUIDs are case-insensitive, and Postgres hands them back lower-cased, so
 * anything that keys on the spelling a caller sent (a rate-limit bucket, a cache field, a signed
 * link) would give each spelling its own entry. Normalising at the edge makes one id one key.
 */
export const uuid = () => z.uuid().transform((id) => id.toLowerCase());

/** The instants a caller may name: Postgres' `timestamptz` holds far more, but nothing before 1970 or after 9999 is a real send or event time. */
export const earliestInstant = new Date(Date.UTC(1970, 0, 1));
export const latestInstant = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
const rangeMessage = "must be between 1970-01-01 and 9999-12-31 (UTC)";
const inRange = (ms: number) => ms >= earliestInstant.getTime() && ms <= latestInstant.getTime();

/** An ISO 8601 date-time with an offset, inside the accepted range. */
export const isoInstant = () => z.iso.datetime({ offset: true }).refine((value) => inRange(Date.parse(value)), rangeMessage);

/** An ISO 8601 calendar day (YYYY-MM-DD), inside the accepted range. */
export const isoDay = () => z.iso.date().refine((value) => inRange(Date.parse(`${value}T00:00:00Z`)), rangeMessage);

/** Anything `new Date()` reads (an ISO string from JSON, a number), inside the accepted range. */
export const dateInput = () => z.coerce.date().min(earliestInstant, rangeMessage).max(latestInstant, rangeMessage);

/**
 * A string whose length is a payload size rather than a shape rule: above `maxChars` it is refused
 * with PAYLOAD_TOO_LARGE (413), like every other size limit, not VALIDATION_FAILED.
 */
export const sizedText = (maxChars: number, what: string) =>
  z.string().superRefine((value) => {
    if (value.length > maxChars) {
      throw new AppError("PAYLOAD_TOO_LARGE", `${what} is larger than ${maxChars} characters`, { details: { limit: maxChars, size: value.length } });
    }
  });
