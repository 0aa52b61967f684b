/**
 * Adaptive concurrency: a limit that a stage (or a Pool) finds for itself
 * from the latency of its calls and from overload errors. No timers: the
 * limit moves only when a call ends (`sample`), so it costs nothing while idle
 * and works on injected clocks.
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
  assertOptions("concurrency", value, "concurrency", ["adaptive"]);
  assertOptions("concurrency.adaptive", adaptive, "concurrency.adaptive", [
    "min",
    "max",
    "initial",
  ]);
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
/** Cut on overload: 0.8 drains a queue in a few round trips without collapsing to `min` (Netflix's AIMD uses 0.9). */
const BACKOFF = 0.8;
/** Deepest cut for latency growth in one window: halving at most, as Gradient2 does. */
const DEEPEST = 0.5;
/** Latency tolerated above the baseline: some queueing is the price of a fully used service. */
const TOLERANCE = 1.5;
/** Successful calls a window needs: fewer make its average noise. */
const MIN_SAMPLES = 4;
/** Growth per window within 2 of the last overload's limit: probing there 3× slower keeps 429s rare at small limits. */
const PROBE = 1 / 3;

/**
 * A concurrency limit that adapts to the calls it sees, after TCP congestion
 * control and Netflix's Vegas/Gradient2 limits.
 *
 * Calls are judged per window (about one round trip: at least the last
 * window's mean latency and 4 successful calls). The baseline is the lowest
 * window mean seen; a window as lightly loaded as that one replaces it, so a
 * service that got slower is re-learned (after the cuts bring the load down)
 * while our own queueing never is. At the end of a window whose limit was used (as many calls in
 * flight as the limit), the limit doubles (slow start, until the first cut)
 * or grows by one (by a third within 2 of the last overload's) while the
 * window's mean latency stays within 1.5× the baseline; beyond that it is cut
 * in proportion (at most halved). An overload cuts it by 0.8 at once, at most
 * once per window: an overload from a call that started before the last cut
 * is not counted again. No timers: the limit moves only in `sample`.
 */
export class AdaptiveLimit {
  readonly min: number;
  readonly max: number;
  #limit: number;
  /** The limit before rounding down. */
  #estimate: number;
  readonly #now: () => number;
  readonly #history: LimitChange[] = [];
  #slowStart = true;
  #baseline = Infinity;
  /** Calls in flight when the baseline was measured. */
  #baseLoad = 0;
  /** The last window's mean latency: the length of the next window. */
  #rtt = 0;
  #lastCut = -Infinity;
  /** The estimate when the last overload came. */
  #ceiling = Infinity;
  // The current window.
  #start: number;
  #count = 0;
  #sum = 0;
  #busy = 0;

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
    this.#limit = this.#estimate = options.initial;
    this.#now = now;
    this.#start = now();
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
    const now = this.#now();
    if (inFlight >= this.#busy) this.#busy = inFlight + 1;
    if (overloaded) {
      // A call started before the last cut saw the old limit: cut once.
      if (now - latencyMs < this.#lastCut) return false;
      this.#slowStart = false;
      this.#lastCut = now;
      this.#ceiling = this.#estimate;
      this.#window(now);
      return this.#set(this.#estimate * BACKOFF);
    }
    // An overload's latency (often a quick refusal) says nothing of the load.
    this.#count++;
    this.#sum += latencyMs;
    if (this.#count < MIN_SAMPLES || now - this.#start < this.#rtt) {
      return false;
    }
    const mean = this.#sum / this.#count;
    this.#rtt = mean;
    if (mean <= this.#baseline || this.#busy <= this.#baseLoad) {
      // Lower, or as light a load as the baseline's: the service's own pace.
      this.#baseline = mean;
      this.#baseLoad = this.#busy;
    }
    const used = this.#busy >= this.#limit;
    this.#window(now);
    const ceiling = this.#baseline * TOLERANCE;
    if (mean > ceiling) {
      this.#slowStart = false;
      return this.#set(this.#estimate * Math.max(DEEPEST, ceiling / mean));
    }
    if (!used) return false;
    return this.#set(
      this.#slowStart ? this.#estimate * 2 : this.#estimate +
        (Math.abs(this.#estimate - this.#ceiling) < 2 ? PROBE : 1),
    );
  }

  /** Starts a window at `now`. */
  #window(now: number): void {
    this.#start = now;
    this.#count = this.#sum = this.#busy = 0;
  }

  /** Moves the estimate to `next` (within the bounds); true if the limit changed. */
  #set(next: number): boolean {
    this.#estimate = Math.min(this.max, Math.max(this.min, next));
    const limit = Math.floor(this.#estimate);
    if (limit === this.#limit) return false;
    this.#limit = limit;
    this.#history.push({ at: Date.now(), limit });
    if (this.#history.length > HISTORY) this.#history.shift();
    return true;
  }
}
