// One task of a Pool: its kind, its states, and the record that is both its
// queue entry and its outcome.
import type { Deadline } from "./_attempt.ts";
import type { QueueEntry } from "./_priority_queue.ts";
import type { RetryPolicy } from "./retry.ts";
import type { TaskContext } from "./types.ts";

/** `fn(...args)`: `Pool.submit()`. */
export const SUBMIT = 0;
/** `fn(ctx)`: `Pool.run()`. */
export const RUN = 1;
/** `fn(item, ctx)`: one item of `Pool.map()`. */
export const MAP = 2;

/** In the pool's queue. */
export const QUEUED = 0;
/** In a worker slot. */
export const RUNNING = 1;
/** Waiting out a retry backoff, holding no slot. */
export const BACKOFF = 2;
/** Settled. */
export const DONE = 3;
/** Waiting for room in a full queue (`maxQueued`): not taken yet. */
export const HELD = 4;

/** A task's function, called with what its kind gives it. */
export type AnyFn = (...args: unknown[]) => unknown;

/**
 * A `run()` task's own retry and timeout, given with the call: the pool's
 * when the call gave none, each resolved. Such a task takes the slow path.
 */
export interface Tuning {
  /** The retry policy of this task (`undefined`: no retry). */
  readonly retry: RetryPolicy | undefined;
  /** The deadline of each of its attempts (`undefined`: none). */
  readonly timeoutMs: number | undefined;
}

/** One task: a queue entry, its function, its outcome. One object per task. */
export class Job implements QueueEntry {
  pos = -1;
  state = QUEUED;
  attempt = 0;
  workerId = -1;
  resolve: ((value: unknown) => void) | undefined = undefined;
  reject: ((reason: unknown) => void) | undefined = undefined;
  /** The listener on `signal` (run() tasks with a signal). */
  onAbort: (() => void) | undefined = undefined;
  /** The running attempt's own signal, when it has one. */
  deadline: Deadline | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The map() call a MAP job belongs to. */
  group: MapGroup | undefined = undefined;
  /** Outcome of the last attempt (slow path). */
  ok = false;
  /**
   * Until its first start: `performance.now()` when it was taken, if timed
   * (for `queueWait`), else `undefined`. After an attempt on the slow path:
   * that attempt's outcome. One field for both: a field more on every task
   * costs more (in garbage collection) than the sampled timing saves.
   */
  value: unknown = undefined;

  constructor(
    readonly kind: number,
    readonly fn: AnyFn,
    readonly args: unknown[] | undefined,
    /**
     * MAP: its item. RUN: its {@linkcode Tuning}, when the call gave a
     * `retry` or `timeoutMs` (a field that is free on RUN tasks: a field
     * more on every task would cost the plain path).
     */
    readonly item: unknown,
    readonly priority: number,
    /** Its id; a task held for room gets it when it enters. */
    public seq: number,
    /** A map item's index, else its id (RUN) or 0 (SUBMIT). */
    public index: number,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/** The tasks of one map() call. */
export interface MapGroup {
  /**
   * The lowest index of the map's failed tasks: in input order the map fails
   * at that item's turn, so a task after it would only be wasted and does
   * not start (it settles with an `AbortError`).
   */
  failedAt: number;
  /** The task of each slot signal of the map's run (settled ones linger). */
  current: Map<AbortSignal, Job>;
}

/**
 * What a map() task rejects with: its error in a box that only the pool
 * makes, so the map tells its own tasks' failures (wrapped by the run in a
 * `PipelineError`) from anything else and rethrows them as they were.
 */
export class MapFailure {
  constructor(readonly error: unknown) {}
}

/** A new promise of `job`, settled through its `resolve` and `reject`. */
export function promiseOf(job: Job): Promise<unknown> {
  return new Promise((resolve, reject) => {
    job.resolve = resolve;
    job.reject = reject;
  });
}

/** Calls `job`'s function as its kind says, `signal` its `ctx.signal`. */
export function call(job: Job, signal: AbortSignal): unknown {
  return job.kind === SUBMIT
    ? apply(job.fn, job.args!)
    : job.kind === MAP
    ? job.fn(job.item, taskContext(job, signal))
    : job.fn(taskContext(job, signal));
}

/** The `ctx` of `job`'s current attempt. */
export function taskContext(job: Job, signal: AbortSignal): TaskContext {
  return {
    signal,
    workerId: job.workerId,
    itemId: job.index,
    index: job.index,
    attempt: job.attempt,
    stage: "pool",
    context: undefined,
  };
}

/** `fn(...args)`, without the spread for the common short cases. */
export function apply(fn: AnyFn, args: unknown[]): unknown {
  switch (args.length) {
    case 0:
      return fn();
    case 1:
      return fn(args[0]);
    case 2:
      return fn(args[0], args[1]);
    default:
      return fn(...args);
  }
}
