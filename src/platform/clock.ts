// The one place time is read: services and jobs ask their context's clock, so tests can set the hour.

export interface Clock {
  now(): Date;
}

/** The clock every Worker entry point uses: the runtime's own time. */
export const systemClock: Clock = { now: () => new Date() };

/**
 * A clock that runs at real speed from a chosen instant: for tests that need a given hour of the day
 * (a send window, a local midnight) while timeouts and the database still see real time pass.
 */
export function shiftedClock(startAt: Date, base: Clock = systemClock): Clock {
  const offset = startAt.getTime() - base.now().getTime();
  return { now: () => new Date(base.now().getTime() + offset) };
}
