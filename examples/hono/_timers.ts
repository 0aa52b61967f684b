/**
 * Test instrumentation for the entry points: wraps the global timer functions
 * to count the timers that are set and neither fired nor cleared, so the
 * runtime tests can check that a disconnect leaves no timer behind (heartbeats,
 * progress, batch flushes, the simulated calls). Installed only when the
 * entry point is asked to (`SLUICE_TRACK_TIMERS=1`); the app works without it.
 *
 * @module
 */

/** A timer that is set and has neither fired nor been cleared. */
export interface PendingTimer {
  /** `"timeout"` or `"interval"`. */
  kind: "timeout" | "interval";
  /** The delay it was set with, in milliseconds. */
  delay: number;
  /** Where it was set (one line of the stack). */
  at: string;
}

/** Reads the pending timers. */
export type TimerProbe = () => PendingTimer[];

let installed: TimerProbe | undefined;

/**
 * Wraps `setTimeout`, `setInterval`, `clearTimeout` and `clearInterval` of
 * `globalThis` (once; later calls return the same probe).
 *
 * @returns A function listing the pending timers.
 */
export function trackTimers(): TimerProbe {
  if (installed) return installed;
  const pending = new Map<unknown, PendingTimer>();
  const g = globalThis as unknown as Record<string, unknown>;
  type Setter = (
    fn: (...a: unknown[]) => void,
    ms?: number,
    ...a: unknown[]
  ) => unknown;
  type Clearer = (handle: unknown) => void;
  const setT = g.setTimeout as Setter;
  const setI = g.setInterval as Setter;
  const clearT = g.clearTimeout as Clearer;
  const clearI = g.clearInterval as Clearer;
  const where = (): string =>
    (new Error().stack ?? "").split("\n").slice(3, 4).join("").trim();
  g.setTimeout = (
    fn: (...a: unknown[]) => void,
    ms?: number,
    ...a: unknown[]
  ) => {
    const handle: unknown = setT(
      (...args: unknown[]) => {
        pending.delete(key(handle));
        fn(...args);
      },
      ms,
      ...a,
    );
    pending.set(key(handle), { kind: "timeout", delay: ms ?? 0, at: where() });
    return handle;
  };
  g.setInterval = (
    fn: (...a: unknown[]) => void,
    ms?: number,
    ...a: unknown[]
  ) => {
    const handle = setI(fn, ms, ...a);
    pending.set(key(handle), { kind: "interval", delay: ms ?? 0, at: where() });
    return handle;
  };
  g.clearTimeout = (handle: unknown) => {
    pending.delete(key(handle));
    clearT(handle);
  };
  g.clearInterval = (handle: unknown) => {
    pending.delete(key(handle));
    clearI(handle);
  };
  installed = () => [...pending.values()];
  return installed;
}

/** Node and Bun return objects that convert to their numeric id. */
function key(handle: unknown): unknown {
  if (typeof handle === "object" && handle !== null) {
    const n = Number(handle);
    return Number.isNaN(n) ? handle : n;
  }
  return handle;
}
