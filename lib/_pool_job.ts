// One task of a Pool: its kind, its states, and the record that is both its
// queue entry and its outcome.
import type { Deadline } from "./_attempt.ts";
import type { QueueEntry } from "./_priority_queue.ts";
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

/** A task's function, called with what its kind gives it. */
export type AnyFn = (...args: unknown[]) => unknown;

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
    readonly item: unknown,
    readonly priority: number,
    readonly seq: number,
    readonly index: number,
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
