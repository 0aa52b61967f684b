/**
 * A run's statistics and events: the counters behind `flow.stats()`, the item
 * events (dispatched only once someone listens) and the `progress` timer.
 *
 * @module
 */

import { Histogram } from "./_histogram.ts";
import { type Token, UNIT } from "./_token.ts";
import type { AdaptiveLimit } from "./_adaptive_limit.ts";
import type { Tracker } from "./_tracker.ts";
import type { AdaptiveStats, FlowStats, StageStats } from "./stats.ts";

// Events are dispatched per type only once someone listens to that type.
export const STARTED = 1;
export const COMPLETED = 2;
export const RETRYING = 4;
export const FAILED = 8;
export const SKIPPED = 16;
export const QUEUED = 32;
export const CONCURRENCY = 64;
/** Events whose detail has `durationMs`: their calls are timed. */
export const TIMED_EVENTS = COMPLETED | FAILED | RETRYING;
const EVENT_BITS: Record<string, number> = {
  queued: QUEUED,
  started: STARTED,
  completed: COMPLETED,
  retrying: RETRYING,
  failed: FAILED,
  skipped: SKIPPED,
  concurrency: CONCURRENCY,
};
/** No `error` field in the event's detail. */
export const NO_ERROR: unique symbol = Symbol("no error");
/**
 * Calls are sampled (`sampled` in _token.ts: a clock read costs about as much
 * as scheduling an item) unless some stage's calls take longer than this (ms)
 * on average.
 */
const TIME_ALL_ABOVE_MS = 0.1;

/** What the run's stats need of a stage. */
export interface StagePart {
  /** Moving average of its timed calls (ms); 0 for a stage without calls. */
  readonly recentMs: number;
  /** Its counters now. */
  snapshot(elapsedMs: number): StageStats;
}

/**
 * The stats of a stage that makes no calls (batch, flatten): only its
 * `completed` count and what it holds.
 */
export function callFreeStageStats(
  name: string,
  kind: "batch" | "flatten",
  completed: number,
  queued: number,
  elapsedMs: number,
): StageStats {
  return {
    name,
    kind,
    concurrency: 0,
    queued,
    inFlight: 0,
    busy: 0,
    backingOff: 0,
    completed,
    failed: 0,
    skipped: 0,
    retried: 0,
    latency: new Histogram().snapshot(),
    queueWait: new Histogram().snapshot(),
    throughput: elapsedMs > 0 ? completed / (elapsedMs / 1000) : 0,
    workers: [],
  };
}

/** What `stats()` shows of an adaptive limit (a stage's or a Pool's). */
export function adaptiveStats(limit: AdaptiveLimit): AdaptiveStats {
  return {
    min: limit.min,
    max: limit.max,
    limit: limit.limit,
    history: limit.history.slice(),
  };
}

/**
 * The counters of one run. Item counts are weights (in `UNIT`s, so they add
 * up exactly): see {@linkcode FlowStats} for what each means.
 */
export class RunStats {
  readonly #startedAt = Date.now();
  readonly #target: EventTarget;
  readonly #stages: readonly StagePart[];
  readonly #progressIntervalMs: number;
  readonly #report: () => FlowStats;
  #progressTimer: ReturnType<typeof setInterval> | undefined;
  /** End-to-end latency of results (sampled like calls). */
  readonly latency = new Histogram();
  /** Time every token (not only sampled ones) while some stage's calls are slow. */
  timeAll = false;
  /**
   * A bit per event type to report (STARTED, …): listened to, or tracked.
   * Only these cost anything on the way of an item.
   */
  listening = 0;
  /** A bit per event type someone listens to. */
  #dispatching = 0;
  /** Item tracking (`run(source, { track })`), if on. */
  readonly tracker: Tracker | null;
  itemsIn = 0;
  /** Results out (a count, not a weight). */
  results = 0;
  outWeight = 0;
  filteredWeight = 0;
  skippedWeight = 0;
  failedWeight = 0;
  cancelledWeight = 0;

  /**
   * @param target Where events are dispatched (the Flow).
   * @param stages The run's stages, for `timeAll` and the snapshot.
   * @param progressIntervalMs The `progress` event's period.
   * @param report The run's stats now (the `progress` event's detail).
   * @param tracker Item tracking, if on.
   */
  constructor(
    target: EventTarget,
    stages: readonly StagePart[],
    progressIntervalMs: number,
    report: () => FlowStats,
    tracker: Tracker | null,
  ) {
    this.#target = target;
    this.#stages = stages;
    this.#progressIntervalMs = progressIntervalMs;
    this.#report = report;
    this.tracker = tracker;
    if (tracker !== null) {
      this.listening = QUEUED | STARTED | RETRYING | FAILED | SKIPPED;
    }
  }

  /** Someone listens to `type` (from now on it is dispatched). */
  listen(type: string, running: boolean): void {
    if (Object.hasOwn(EVENT_BITS, type)) {
      this.listening |= EVENT_BITS[type];
      this.#dispatching |= EVENT_BITS[type];
    }
    if (type === "progress" && this.#progressTimer === undefined && running) {
      this.#progressTimer = setInterval(
        () => this.#progress(),
        this.#progressIntervalMs,
      );
    }
  }

  /** The run has settled: the last `progress` event, with the final figures. */
  end(): void {
    if (this.#progressTimer === undefined) return;
    clearInterval(this.#progressTimer);
    this.#progressTimer = undefined;
    this.#progress();
  }

  #progress(): void {
    this.#target.dispatchEvent(
      new CustomEvent("progress", { detail: this.#report() }),
    );
  }

  /**
   * Dispatches an item event about `t` at stage `stage`. `durationMs` (the
   * call's, when timed) and `task` (in a multi-task stage) are added when
   * known.
   */
  emit(
    type: string,
    stage: string,
    t: Token,
    workerId: number,
    error: unknown = NO_ERROR,
    durationMs = NaN,
    task?: string,
  ): void {
    const tracker = this.tracker;
    if (tracker !== null) {
      tracker.event(
        type,
        stage,
        t.id,
        t.attempt,
        error === NO_ERROR ? undefined : error,
      );
      if ((this.#dispatching & EVENT_BITS[type]) === 0) return;
    }
    const detail: Record<string, unknown> = {
      itemId: t.id,
      index: t.index,
      stage,
      workerId,
      attempt: t.attempt,
      timestamp: Date.now(),
    };
    if (error !== NO_ERROR) detail.error = error;
    if (durationMs === durationMs) detail.durationMs = durationMs; // not NaN
    if (task !== undefined) detail.task = task;
    this.#target.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** `"queued"`: an item entered `stage` (whether it then waits or starts). */
  queued(stage: string, id: unknown, index: number): void {
    const tracker = this.tracker;
    if (tracker !== null) {
      tracker.queued(stage, id, index);
      if ((this.#dispatching & QUEUED) === 0) return;
    }
    this.#target.dispatchEvent(
      new CustomEvent("queued", {
        detail: { itemId: id, index, stage, timestamp: Date.now() },
      }),
    );
  }

  /** `"concurrency"`: a stage's limit changed. */
  concurrency(stage: string, from: number, to: number, reason: string): void {
    this.#target.dispatchEvent(
      new CustomEvent("concurrency", {
        detail: { stage, from, to, reason, timestamp: Date.now() },
      }),
    );
  }

  /**
   * After each sampled call of a stage (every 16 once all are timed): time
   * them all while some stage is slow (then the clock costs nothing in
   * comparison), only sampled ones otherwise.
   * Reversible, so slow warm-up calls do not switch it on for good.
   */
  updateTimeAll(): void {
    this.timeAll = this.#stages.some((x) => x.recentMs > TIME_ALL_ABOVE_MS);
  }

  /** Records a result's end-to-end latency, if its birth was timed. */
  recordLatency(bornAt: number): void {
    // bornAt is NaN for tokens timed only from a later stage on.
    if (!Number.isNaN(bornAt)) this.latency.record(performance.now() - bornAt);
  }

  /**
   * The run's stats now.
   *
   * @param held Source items read and not out (weights).
   * @param done Whether the run has settled.
   */
  snapshot(held: number, done: boolean): FlowStats {
    const elapsedMs = Date.now() - this.#startedAt;
    const items = (weight: number) => weight / UNIT; // exact: a power of two
    const stages = this.#stages.map((st) => st.snapshot(elapsedMs));
    return {
      elapsedMs,
      itemsIn: this.itemsIn,
      itemsOut: items(this.outWeight),
      failed: items(this.failedWeight),
      skipped: items(this.skippedWeight),
      filtered: items(this.filteredWeight),
      cancelled: items(this.cancelledWeight),
      inFlight: items(held),
      results: this.results,
      running: stages.reduce((sum, st) => sum + st.inFlight, 0),
      done,
      latency: this.latency.snapshot(),
      stages,
    };
  }
}
