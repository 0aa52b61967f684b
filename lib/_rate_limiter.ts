// A sliding-window rate limiter: at most `limit` starts in ANY window of
// `intervalMs` milliseconds. A start at time t is allowed iff fewer than
// `limit` starts happened in (t - intervalMs, t], i.e. iff the oldest of the
// last `limit` starts (kept in a ring buffer) is at or before t - intervalMs.
// Unlike fixed windows, no burst of 2 × limit starts around a window edge.
//
// Waiters are served first in, first out, by one timer at most, armed for the
// moment the oldest start leaves the window. Each public call reads the clock
// once, and a timer tick reads it once for all the waiters it starts.

import type { RateLimit } from "./types.ts";
import { Fifo } from "./_fifo.ts";
import { assertDuration, assertInteger, assertOptions } from "./_validate.ts";

/** One pending `acquire()`. */
interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Started, aborted or rejected by `close()`: skipped when it reaches the head. */
  done: boolean;
}

/** A rate limiter of task starts over a sliding window. */
export class RateLimiter {
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** Times of the last `limit` starts (-Infinity: none yet), a ring buffer. */
  readonly #starts: Float64Array;
  /** Index of the oldest start, which the next start overwrites. */
  #oldest = 0;
  /** Waiters in arrival order; aborted ones stay in place, marked `done`. */
  readonly #waiters = new Fifo<Waiter>();
  /** Waiters not `done`. Invariant: the timer is armed iff this is > 0. */
  #waiting = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #reason: unknown;

  /**
   * @param limit Starts allowed per window: a positive integer (not checked).
   * @param intervalMs Window length in milliseconds, > 0 (not checked).
   * @param now The clock, in milliseconds; injectable for tests.
   */
  constructor(
    limit: number,
    intervalMs: number,
    now: () => number = () => performance.now(),
  ) {
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#starts = new Float64Array(limit).fill(-Infinity);
  }

  /** Number of `acquire()` calls waiting for their turn. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Records a start and returns true if one is allowed now and nobody is
   * waiting (waiters keep their turn); returns false otherwise, and after
   * `close()`.
   */
  tryAcquire(): boolean {
    return !this.#closed && this.#waiting === 0 && this.#tryStart(this.#now());
  }

  /**
   * Resolves when the caller may start, the start being recorded at that
   * moment. Callers are served first in, first out.
   *
   * @param signal Aborting it while waiting rejects with `signal.reason` and
   * gives the turn to the next waiter.
   * @returns A promise that rejects with `signal.reason` on abort (at once if
   * `signal` is already aborted), or with the reason given to `close()`.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(this.#reason);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.#now();
    if (this.#waiting === 0 && this.#tryStart(now)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: undefined,
        done: false,
      };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          this.#settle(waiter);
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#waiting++;
      this.#arm(now);
    });
  }

  /**
   * Rejects every waiter with `reason` and clears the timer; later calls to
   * `acquire()` reject with `reason` and `tryAcquire()` returns false.
   * Calling it again does nothing.
   */
  close(reason: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reason = reason;
    while (this.#waiting > 0) {
      const waiter = this.#head();
      this.#settle(waiter);
      waiter.reject(reason);
    }
  }

  /** Records a start at `now` if the window allows it. */
  #tryStart(now: number): boolean {
    if (now - this.#starts[this.#oldest] < this.#intervalMs) return false;
    this.#starts[this.#oldest] = now;
    if (++this.#oldest === this.#starts.length) this.#oldest = 0;
    return true;
  }

  /** Arms the timer, if not armed, for when the oldest start leaves the window. */
  #arm(now: number): void {
    if (this.#timer !== undefined) return;
    const wait = this.#starts[this.#oldest] + this.#intervalMs - now;
    // Rounded up: a timer firing a fraction early just re-arms.
    this.#timer = setTimeout(this.#drain, Math.max(0, Math.ceil(wait)));
  }

  /** The timer callback: starts every waiter the window allows, in order. */
  #drain = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    while (this.#waiting > 0 && this.#tryStart(now)) {
      const waiter = this.#head();
      this.#settle(waiter);
      waiter.resolve();
    }
    if (this.#waiting > 0) this.#arm(now);
  };

  /** Removes and returns the first waiter not `done` (one must exist). */
  #head(): Waiter {
    let waiter = this.#waiters.shift()!;
    while (waiter.done) waiter = this.#waiters.shift()!;
    return waiter;
  }

  /** Marks `waiter` done, removes its abort listener, disarms when idle. */
  #settle(waiter: Waiter): void {
    waiter.done = true;
    if (waiter.onAbort !== undefined) {
      waiter.signal!.removeEventListener("abort", waiter.onAbort);
    }
    if (--this.#waiting === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.#waiters.size > 0) this.#waiters.clear(); // aborted leftovers
    }
  }
}

/**
 * Validates a user's `rateLimit` option.
 *
 * @param value The option as given.
 * @returns A copy of `{ limit, intervalMs }`, or `undefined` when `value` is.
 * @throws {TypeError} If `value` is not an object, `limit` or `intervalMs` not
 * a number.
 * @throws {RangeError} If `limit` is not a positive integer or `intervalMs`
 * not a number of ms above 0 and at most 2³¹−1.
 */
export function readRateLimit(value: unknown): RateLimit | undefined {
  if (value === undefined) return undefined;
  assertOptions("rateLimit", value, "rateLimit", ["limit", "intervalMs"]);
  const { limit, intervalMs } = value as Partial<
    Record<keyof RateLimit, unknown>
  >;
  assertInteger("rateLimit.limit", limit, 1);
  assertDuration("rateLimit.intervalMs", intervalMs, { positive: true });
  return { limit, intervalMs };
}
