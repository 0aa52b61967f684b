// What a Pool reports: the public types of `pool.stats()` and of its events.
// Types only.
import type { AdaptiveStats, LatencyStats, WorkerState } from "./stats.ts";

/**
 * A snapshot of a {@linkcode Pool}, from `pool.stats()`: the fields of a
 * flow stage's `StageStats` that make sense for a pool. Task counts balance
 * exactly at every moment:
 * `submitted === completed + failed + cancelled + active + pending`.
 */
export interface PoolStats {
  /** Milliseconds since the pool was made. */
  readonly elapsedMs: number;
  /** The current limit of running tasks (`pool.concurrency`). */
  readonly concurrency: number;
  /** Tasks taken so far (by `submit()`, `run()` and `map()`). */
  readonly submitted: number;
  /** Tasks running now (a stage's `inFlight` and `busy`). */
  readonly active: number;
  /** Tasks waiting to start: `queued + backingOff` (`pool.pending`). */
  readonly pending: number;
  /** Tasks in the queue. */
  readonly queued: number;
  /** Tasks waiting out a retry backoff (they hold no slot). */
  readonly backingOff: number;
  /**
   * Tasks waiting for room in a full queue (`maxQueued`, `onFull: "wait"`):
   * not taken yet, so in no other count (`submitted` counts them once they
   * enter). `0` without `maxQueued`.
   */
  readonly waiting: number;
  /** Tasks that succeeded. */
  readonly completed: number;
  /** Tasks whose last attempt failed (after the retries). */
  readonly failed: number;
  /**
   * Tasks dropped before (or between) their attempts: aborted by their
   * `signal`, by a `map()` that stopped, or by `close({ cancelPending })`.
   */
  readonly cancelled: number;
  /** Retries: attempts after the first. */
  readonly retried: number;
  /**
   * Time per successful attempt. Attempts are timed one in 128 (a clock read
   * costs about as much as running a trivial task) unless the tasks average
   * over 0.1 ms, someone listens to `completed`, `retrying` or `failed`, the
   * pool is adaptive, or it has `retry`, `timeoutMs` or `rateLimit` (or the
   * task a `signal`, or a `retry` or `timeoutMs` of its own): then every
   * attempt is timed.
   */
  readonly latency: LatencyStats;
  /**
   * Time from `submit()`/`run()` to a task's first start (timed like
   * latency); for a task that waited for room (`maxQueued`), from when it
   * entered the queue.
   */
  readonly queueWait: LatencyStats;
  /** Completed tasks per second since the pool was made. */
  readonly throughput: number;
  /**
   * One entry per worker slot used so far, by `workerId`. `since` is present
   * on a busy slot whose task is timed.
   */
  readonly workers: readonly WorkerState[];
  /** Whether `pause()` holds tasks back. */
  readonly paused: boolean;
  /** Whether the pool was closed. */
  readonly closed: boolean;
  /** The adaptive limit, when the pool has one. */
  readonly adaptive?: AdaptiveStats;
}

/** The `detail` of a pool's `queued` event. */
export interface PoolQueuedDetail {
  /** The task's id: its submission number in the pool, from 0. */
  readonly taskId: number;
  /** For a `map()` task: its item's input position. */
  readonly index?: number;
  /** Its priority. */
  readonly priority: number;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/** The `detail` of a pool's `active` event (an attempt starts). */
export interface PoolActiveDetail extends PoolQueuedDetail {
  /** The worker slot (`ctx.workerId`). */
  readonly workerId: number;
  /** The attempt, from 1. */
  readonly attempt: number;
}

/** The `detail` of a pool's `completed` event. */
export interface PoolCompletedDetail {
  /** The task's id. */
  readonly taskId: number;
  /** For a `map()` task: its item's input position. */
  readonly index?: number;
  /** The worker slot. */
  readonly workerId: number;
  /** The attempt that ended, from 1. */
  readonly attempt: number;
  /**
   * How long that attempt ran (ms); `NaN` for an attempt that started before
   * the first listener that needs it was added (it was not timed).
   */
  readonly durationMs: number;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/** The `detail` of a pool's `failed` event: a task's final failure. */
export interface PoolFailedDetail extends PoolCompletedDetail {
  /** The error. */
  readonly error: unknown;
}

/** The `detail` of a pool's `retrying` event: an attempt failed, one follows. */
export interface PoolRetryingDetail extends PoolFailedDetail {
  /** The backoff before the next attempt (ms). */
  readonly delayMs: number;
}

/** The `detail` of a pool's `cancelled` event: a task dropped before it ran on. */
export interface PoolCancelledDetail {
  /** The task's id. */
  readonly taskId: number;
  /** For a `map()` task: its item's input position. */
  readonly index?: number;
  /** Attempts made (0 when it never started). */
  readonly attempt: number;
  /** What its promise rejects with. */
  readonly error: unknown;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/** The `detail` of a pool's `idle` event. */
export interface PoolIdleDetail {
  /** Tasks that succeeded so far. */
  readonly completed: number;
  /** Tasks that failed so far. */
  readonly failed: number;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/** The `detail` of a pool's `concurrency` event. */
export interface PoolConcurrencyDetail {
  /** The limit before. */
  readonly from: number;
  /** The limit from now on. */
  readonly to: number;
  /** `"set"`: `pool.concurrency = n`; `"adaptive"`: the adaptive limit moved. */
  readonly reason: "set" | "adaptive";
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/**
 * The events of a {@linkcode Pool}, each a `CustomEvent`, dispatched
 * synchronously where they happen, and only once someone listens to that
 * type (without a listener an event costs one bit test). Per task, in order:
 * `queued` once when it is taken (whether it then waits or starts at once),
 * then per attempt `active`, and `retrying` after each failed attempt that
 * is retried; it ends with exactly one of `completed`, `failed` or
 * `cancelled` (a task dropped from the queue or a backoff). `idle` fires once
 * each time the pool becomes idle (when `onIdle()` would resolve);
 * `concurrency` on each change of the limit.
 */
export interface PoolEventMap {
  /** A task was taken (it waits, or starts at once). */
  queued: CustomEvent<PoolQueuedDetail>;
  /** An attempt starts on a worker slot. */
  active: CustomEvent<PoolActiveDetail>;
  /** A task succeeded. */
  completed: CustomEvent<PoolCompletedDetail>;
  /** An attempt failed and will be retried after `delayMs`. */
  retrying: CustomEvent<PoolRetryingDetail>;
  /** A task failed for good (after the retries). */
  failed: CustomEvent<PoolFailedDetail>;
  /** A task was dropped before it ran (on): aborted or cancelled. */
  cancelled: CustomEvent<PoolCancelledDetail>;
  /** No task is running, queued or backing off any more. */
  idle: CustomEvent<PoolIdleDetail>;
  /** The concurrency limit changed. */
  concurrency: CustomEvent<PoolConcurrencyDetail>;
}
