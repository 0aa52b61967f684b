/**
 * Adaptive concurrency: a limit that a stage (or a Pool) finds for itself
 * from the latency of its calls and from overload errors. No timers: the
 * limit moves only when a call ends (`sample`), so it costs nothing while idle
 * and works on injected clocks.
 *
 * STUB: the algorithm is being written (issue 19); the interface is fixed.
 *
 * @module
 */

import type { AdaptiveConcurrency, LimitChange } from "./types.ts";
import { assertInteger, assertOptions, show } from "./_validate.ts";

/** The validated `adaptive` options. */
export interface AdaptiveOptions {
  readonly min: number;
  readonly max: number;
  readonly initial: number;
}

/**
 * Reads a `concurrency` option: a positive integer (or `Infinity`), or
 * `{ adaptive: { min, max, initial? } }`.
 */
export function readConcurrency(
  value: unknown,
): number | AdaptiveOptions {
  if (typeof value !== "object" || value === null) {
    assertInteger("concurrency", value, 1, true);
    return value;
  }
  const { adaptive } = value as Partial<AdaptiveConcurrency>;
  if (typeof adaptive !== "object" || adaptive === null) {
    throw new TypeError(
      `'concurrency' must be a positive integer, Infinity or { adaptive: { min, max } }: current value is ${
        show(value)
      } without 'adaptive'`,
    );
  }
  assertOptions("concurrency.adaptive", adaptive);
  const { min, max, initial = min } = adaptive;
  assertInteger("concurrency.adaptive.min", min, 1);
  assertInteger("concurrency.adaptive.max", max, min);
  assertInteger("concurrency.adaptive.initial", initial, min);
  if (initial > max) {
    throw new RangeError(
      `'concurrency.adaptive.initial' must be <= max (${max}): current value is ${initial}`,
    );
  }
  return { min, max, initial };
}

/**
 * Whether `error` signals overload by itself: an HTTP 429 or 503 carried as
 * `error.status`, `error.statusCode`, `error.response.status`, or a thrown
 * `Response`.
 */
export function isOverload(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as {
    status?: unknown;
    statusCode?: unknown;
    response?: { status?: unknown };
  };
  const status = e.status ?? e.statusCode ?? e.response?.status;
  return status === 429 || status === 503;
}

/** Limit changes kept for `stats()`. */
const HISTORY = 64;

/** A concurrency limit that adapts to the calls it sees. */
export class AdaptiveLimit {
  readonly min: number;
  readonly max: number;
  #limit: number;
  readonly #now: () => number;
  readonly #history: LimitChange[] = [];

  /**
   * @param options The validated options.
   * @param now The clock, in ms (`performance.now` unless injected).
   */
  constructor(
    options: AdaptiveOptions,
    now: () => number = () => performance.now(),
  ) {
    this.min = options.min;
    this.max = options.max;
    this.#limit = options.initial;
    this.#now = now;
    this.#history.push({ at: Date.now(), limit: this.#limit });
  }

  /** The current limit: an integer from `min` to `max`. */
  get limit(): number {
    return this.#limit;
  }

  /** The last limit changes (at most 64), oldest first. */
  get history(): readonly LimitChange[] {
    return this.#history;
  }

  /**
   * A call ended.
   *
   * @param latencyMs How long the call took.
   * @param overloaded Whether its error signalled overload (429/503, or
   *   retryable by the stage's `retryIf`).
   * @param inFlight Calls still running after this one.
   * @returns Whether the limit changed.
   */
  sample(latencyMs: number, overloaded: boolean, inFlight: number): boolean {
    void latencyMs;
    void inFlight;
    void this.#now;
    // Placeholder AIMD: the real algorithm replaces this.
    const next = overloaded
      ? Math.max(this.min, Math.floor(this.#limit * 0.9))
      : Math.min(this.max, this.#limit + 1);
    if (next === this.#limit) return false;
    this.#limit = next;
    this.#history.push({ at: Date.now(), limit: next });
    if (this.#history.length > HISTORY) this.#history.shift();
    return true;
  }
}
