// What a Pool reports: its events (dispatched per type only once someone
// listens to that type), the timing of its attempts (sampled), what each
// worker slot runs, the `stats()` snapshot, and the promises of `onIdle()`
// and `onSizeLessThan()`. `PoolCore` owns one and calls
// it as tasks are added, start, end and settle; on the plain path it first
// tests one field, `watch`, and calls nothing while that is 0 (and the task
// is not sampled).
import type { AdaptiveLimit } from "./_adaptive_limit.ts";
import { Histogram } from "./_histogram.ts";
import { type Job, MAP } from "./_pool_job.ts";
import { adaptiveStats } from "./_run_stats.ts";
import type { PoolStats } from "./pool_stats.ts";
import type { WorkerState } from "./stats.ts";

// A bit per event type, set once someone listens to it.
const QUEUED_EV = 1;
const ACTIVE_EV = 2;
/** The event that ends a task that succeeded. */
export const COMPLETED_EV = 4;
const RETRYING_EV = 8;
/** The event that ends a task that failed (its last attempt). */
export const FAILED_EV = 16;
/** The event that ends a task dropped before or between its attempts. */
export const CANCELLED_EV = 32;
const IDLE_EV = 64;
const CONCURRENCY_EV = 128;
/** In `watch`: every attempt is timed (not one in SAMPLE + 1). */
const TIME_ALL = 256;
const EVENT_BITS: Record<string, number> = {
  queued: QUEUED_EV,
  active: ACTIVE_EV,
  completed: COMPLETED_EV,
  retrying: RETRYING_EV,
  failed: FAILED_EV,
  cancelled: CANCELLED_EV,
  idle: IDLE_EV,
  concurrency: CONCURRENCY_EV,
};
// COMPLETED_EV | RETRYING_EV | FAILED_EV, as a literal: a bundler drops it
// with the module when nothing uses it.
/** The events whose detail carries `durationMs`: every attempt is timed. */
const TIMED_EVENTS = 28;
/**
 * Attempts are timed one in 128 (`(seq & SAMPLE) === 0`, a clock read costs
 * about as much as running a trivial task) unless they average over this
 * (ms), a listener needs `durationMs`, the limit is adaptive or the pool has
 * a retry, timeout or rate limit (its slow path).
 */
const TIME_ALL_ABOVE_MS = 0.1;
/** A task is sampled (timed) when `(seq & SAMPLE) === 0`. */
export const SAMPLE = 127;

/** What `stats()` needs of the pool's state (the rest the monitor has). */
export interface PoolCounts {
  readonly concurrency: number;
  readonly submitted: number;
  /** Tasks not settled yet: active, queued or backing off. */
  readonly unsettled: number;
  readonly queued: number;
  readonly backingOff: number;
  /** Tasks waiting for room (not taken yet). */
  readonly waiting: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  /** Slots used before and free now. */
  readonly freeSlots: readonly number[];
  /** Slots used so far (`0..slotsMade-1`). */
  readonly slotsMade: number;
  readonly paused: boolean;
  readonly closed: boolean;
}

/**
 * The reporting of one `PoolCore`: event dispatch, timing, per-slot state
 * and `stats()`. Internal.
 */
export class PoolMonitor {
  /**
   * Nonzero when anything beyond sampled timing is needed: the bits of the
   * event types listened to, and TIME_ALL. Read by the core's plain path;
   * written only here.
   */
  watch = 0;
  /** The bits of the event types listened to. */
  #listening = 0;
  /** Time every attempt (not one in 128). */
  #timeAll = false;
  /** Every attempt is timed whatever their durations (slow path, adaptive). */
  readonly #alwaysTimed: boolean;
  /** Moving average of the timed attempts (ms). */
  #recentMs = 0;
  readonly #createdAt = Date.now();
  #retried = 0;
  readonly #latency = new Histogram();
  readonly #queueWait = new Histogram();
  /**
   * The task of each slot's timed attempt (for `stats().workers`): written
   * only when the attempt is timed, as storing a new task into this old
   * array on every start costs about 5 % of a trivial task (the write
   * barrier). Valid while its `#slotStart` is a time.
   */
  readonly #slotJobs: (Job | undefined)[] = [];
  /**
   * Per slot: `performance.now()` when its running attempt started, if that
   * attempt is timed; else NaN. Kept by slot, not on the task: no number box
   * allocated per task.
   */
  #slotStart = new Float64Array(8).fill(NaN);
  /**
   * How long the attempt that just ended ran (NaN: not timed); read by its
   * events, dispatched right after it ended, in the same tick.
   */
  #endedMs = NaN;
  /** The pool became idle and someone listens to `idle`: fire it once settled. */
  idleDue = false;
  /** onIdle() and onSizeLessThan() waiters (their count is the core's). */
  #idleWaiters: (() => void)[] = [];
  #sizeWaiters: { limit: number; resolve: () => void }[] = [];
  /** Where events are dispatched (the Pool). */
  readonly #target: EventTarget;
  readonly #adaptive: AdaptiveLimit | undefined;

  /**
   * @param target Where events are dispatched.
   * @param slowPath Whether the pool has a retry, timeout or rate limit.
   * @param adaptive The pool's adaptive limit, if it has one.
   */
  constructor(
    target: EventTarget,
    slowPath: boolean,
    adaptive: AdaptiveLimit | undefined,
  ) {
    this.#target = target;
    this.#adaptive = adaptive;
    this.#alwaysTimed = slowPath || adaptive !== undefined;
    this.#updateTimeAll();
  }

  /** Someone listens to `type`: from now on it is dispatched. */
  listen(type: string): void {
    if (Object.hasOwn(EVENT_BITS, type)) this.#listening |= EVENT_BITS[type];
    this.#endedMs = NaN; // untimed attempts now end with NaN, not a stale value
    this.#updateTimeAll();
  }

  #updateTimeAll(): void {
    this.#timeAll = this.#alwaysTimed ||
      (this.#listening & TIMED_EVENTS) !== 0 ||
      this.#recentMs > TIME_ALL_ABOVE_MS;
    this.watch = this.#listening | (this.#timeAll ? TIME_ALL : 0);
  }

  /** Slot `slot` is used for the first time. */
  newSlot(slot: number): void {
    if (slot === this.#slotStart.length) {
      const start = new Float64Array(2 * slot).fill(NaN);
      start.set(this.#slotStart);
      this.#slotStart = start;
    }
  }

  /** A task was taken (call when `watch` or the task is sampled). */
  added(job: Job): void {
    if (this.#timeAll || (job.seq & SAMPLE) === 0) {
      job.value = performance.now(); // until its first start (see Job)
    }
    if ((this.#listening & QUEUED_EV) !== 0) {
      const detail = this.#detail(job);
      detail.priority = job.priority;
      this.#emit("queued", detail);
    }
  }

  /**
   * An attempt of `job` starts on its slot (`job.workerId`): counts, times
   * (if `always`, every attempt is timed, or the task is sampled), `active`.
   * The plain path calls it when `watch` or the task is sampled; else it
   * only sets `job.attempt = 1`.
   */
  began(job: Job, always: boolean): void {
    if (++job.attempt > 1) this.#retried++;
    if (always || this.#timeAll || (job.seq & SAMPLE) === 0) {
      const now = performance.now();
      this.#slotStart[job.workerId] = now;
      this.#slotJobs[job.workerId] = job;
      const born = job.value;
      if (typeof born === "number") {
        job.value = undefined; // queueWait: up to the first start only
        this.#queueWait.record(now - born);
      }
    }
    if ((this.#listening & ACTIVE_EV) !== 0) {
      const detail = this.#detail(job);
      detail.workerId = job.workerId;
      detail.attempt = job.attempt;
      detail.priority = job.priority;
      this.#emit("active", detail);
    }
  }

  /**
   * The attempt of `job` that `began` ended: returns how long it ran (NaN if
   * it was not timed), kept for its events; a success's time is latency.
   */
  ended(job: Job, ok: boolean): number {
    const slot = job.workerId;
    const started = this.#slotStart[slot];
    // deno-lint-ignore no-self-compare
    if (started !== started) return this.#endedMs = NaN; // not timed
    const ms = this.#endedMs = performance.now() - started;
    this.#slotStart[slot] = NaN;
    this.#slotJobs[slot] = undefined;
    if (ok) this.#latency.record(ms);
    this.#recentMs += (ms - this.#recentMs) / 8;
    this.#updateTimeAll();
    return ms;
  }

  /** `job`'s attempt failed and it retries after `delayMs`. */
  retrying(job: Job, error: unknown, delayMs: number): void {
    if ((this.#listening & RETRYING_EV) === 0) return;
    const detail = this.#ranDetail(job);
    detail.error = error;
    detail.delayMs = delayMs;
    this.#emit("retrying", detail);
  }

  /**
   * `job` settled with `value` (`event`: COMPLETED_EV, FAILED_EV or
   * CANCELLED_EV); `idle` says no task is left unsettled. Call when `watch`.
   */
  finished(job: Job, value: unknown, event: number, idle: boolean): void {
    const listening = this.#listening;
    if ((listening & event) !== 0) {
      if (event === CANCELLED_EV) {
        const detail = this.#detail(job);
        detail.attempt = job.attempt;
        detail.error = value;
        this.#emit("cancelled", detail);
      } else {
        const detail = this.#ranDetail(job);
        if (event === FAILED_EV) detail.error = value;
        this.#emit(event === FAILED_EV ? "failed" : "completed", detail);
      }
    }
    if (idle && (listening & IDLE_EV) !== 0) {
      this.idleDue = true; // fired once its slot is free (PoolCore)
    }
  }

  /** Fires `idle` (once `idleDue` and every task has settled). */
  idle(completed: number, failed: number): void {
    this.idleDue = false;
    this.#emit("idle", { completed, failed, timestamp: Date.now() });
  }

  /** The limit changed. */
  concurrency(from: number, to: number, reason: "set" | "adaptive"): void {
    if ((this.#listening & CONCURRENCY_EV) !== 0) {
      this.#emit("concurrency", { from, to, reason, timestamp: Date.now() });
    }
  }

  /** The start of an event's detail: the task's id (and a map item's index). */
  #detail(job: Job): Record<string, unknown> {
    const detail: Record<string, unknown> = { taskId: job.seq };
    if (job.kind === MAP) detail.index = job.index;
    return detail;
  }

  /** The detail of an attempt that ended: `completed`, `retrying`, `failed`. */
  #ranDetail(job: Job): Record<string, unknown> {
    const detail = this.#detail(job);
    detail.workerId = job.workerId;
    detail.attempt = job.attempt;
    detail.durationMs = this.#endedMs;
    return detail;
  }

  #emit(type: string, detail: Record<string, unknown>): void {
    detail.timestamp ??= Date.now();
    this.#target.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** A promise for `onIdle()` (the pool is not idle). */
  onIdle(): Promise<void> {
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** A promise for `onSizeLessThan(limit)` (`pending` is not below it). */
  onSizeLessThan(limit: number): Promise<void> {
    return new Promise((resolve) => this.#sizeWaiters.push({ limit, resolve }));
  }

  /**
   * Resolves the `onIdle()` and `onSizeLessThan()` waiters now due; returns
   * how many it resolved.
   */
  check(unsettled: number, pending: number): number {
    let resolved = 0;
    if (unsettled === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      resolved += waiters.length;
      for (const resolve of waiters) resolve();
    }
    if (this.#sizeWaiters.length > 0) {
      const keep: { limit: number; resolve: () => void }[] = [];
      for (const w of this.#sizeWaiters) {
        if (pending < w.limit) {
          resolved++;
          w.resolve();
        } else keep.push(w);
      }
      this.#sizeWaiters = keep;
    }
    return resolved;
  }

  /** `Pool.stats()`, from the pool's `counts` and what is kept here. */
  stats(counts: PoolCounts): PoolStats {
    const nowMs = performance.now();
    const now = Date.now();
    const elapsedMs = now - this.#createdAt;
    const { queued, backingOff, completed } = counts;
    const workers: WorkerState[] = [];
    const idle = new Set(counts.freeSlots);
    for (let workerId = 0; workerId < counts.slotsMade; workerId++) {
      const started = this.#slotStart[workerId];
      const job = this.#slotJobs[workerId];
      if (idle.has(workerId)) workers.push({ workerId, state: "idle" });
      // deno-lint-ignore no-self-compare
      else if (started !== started || job === undefined) {
        workers.push({ workerId, state: "busy" }); // not timed: task unknown
      } else {
        workers.push({
          workerId,
          state: "busy",
          itemId: job.seq,
          ...(job.kind === MAP ? { index: job.index } : {}),
          since: now - (nowMs - started),
        });
      }
    }
    const adaptive = this.#adaptive;
    return {
      elapsedMs,
      concurrency: counts.concurrency,
      submitted: counts.submitted,
      active: counts.unsettled - queued - backingOff,
      pending: queued + backingOff,
      queued,
      backingOff,
      waiting: counts.waiting,
      completed,
      failed: counts.failed,
      cancelled: counts.cancelled,
      retried: this.#retried,
      latency: this.#latency.snapshot(),
      queueWait: this.#queueWait.snapshot(),
      throughput: elapsedMs > 0 ? completed / (elapsedMs / 1000) : 0,
      workers,
      paused: counts.paused,
      closed: counts.closed,
      ...(adaptive && { adaptive: adaptiveStats(adaptive) }),
    };
  }
}
