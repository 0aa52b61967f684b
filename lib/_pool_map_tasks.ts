// A map()'s side of a Pool (lib/_pool_map.ts runs the map): its items made
// into pool tasks, their abort listeners (one per slot signal of the map's
// run, not one per task), and the map runs following the pool's concurrency.
import { abortError } from "./errors.ts";
import {
  type AnyFn,
  Job,
  MAP,
  MapFailure,
  type MapGroup,
  promiseOf,
} from "./_pool_job.ts";
import type { MapHost } from "./_pool_map.ts";
import type { TaskContext } from "./types.ts";

/** What the map tasks use of their pool (`PoolCore`). */
export interface MapTasksPool {
  /** The pool's `TypeError` when it takes no new task, else `undefined`. */
  closedError(): TypeError | undefined;
  /** The pool's concurrency now. */
  concurrency(): number;
  /** Takes a new task (it gets its id there), or holds it for room. */
  accept(job: Job, promise: Promise<unknown>): Promise<unknown>;
  /** Aborts a task: dropped if waiting, its slot's signal aborted if running. */
  abort(job: Job, reason: unknown): void;
}

/**
 * What a map() run uses of the pool, and its tasks' abort listeners.
 * Internal: `PoolCore` owns one.
 */
export class PoolMapTasks implements MapHost {
  readonly #pool: MapTasksPool;
  /** The map() runs following the concurrency. */
  readonly #watchers = new Set<(n: number) => void>();

  constructor(pool: MapTasksPool) {
    this.#pool = pool;
  }

  /** One item of a map(): a task whose signal is the map call's `ctx.signal`. */
  submit(
    fn: (item: unknown, ctx: TaskContext) => unknown,
    item: unknown,
    index: number,
    priority: number,
    signal: AbortSignal,
    group: MapGroup,
  ): Promise<unknown> {
    const closed = this.#pool.closedError();
    if (closed !== undefined) return Promise.reject(new MapFailure(closed));
    if (signal.aborted) return Promise.reject(new MapFailure(signal.reason));
    if (index > group.failedAt) {
      return Promise.reject(
        new MapFailure(abortError("An earlier item failed")),
      );
    }
    const job = new Job(
      MAP,
      fn as AnyFn,
      undefined,
      item,
      priority,
      0, // its id, given when the pool takes it
      index,
      signal,
    );
    const promise = promiseOf(job);
    job.group = group;
    return this.#pool.accept(job, promise);
  }

  closedError(): TypeError | undefined {
    return this.#pool.closedError();
  }

  concurrency(): number {
    return this.#pool.concurrency();
  }

  watchConcurrency(cb: (n: number) => void): () => void {
    this.#watchers.add(cb);
    return () => this.#watchers.delete(cb);
  }

  /** The pool's concurrency is now `n`. */
  changed(n: number): void {
    for (const watch of this.#watchers) watch(n);
  }

  /**
   * A map task enters the pool: it becomes its slot signal's current task.
   * One listener per slot signal of the map's run (a slot has one call in
   * flight), not one per task: a listener costs more than the task.
   */
  listen(job: Job): void {
    const signal = job.signal!;
    const current = job.group!.current;
    if (!current.has(signal)) {
      signal.addEventListener("abort", () => {
        const running = current.get(signal);
        if (running !== undefined) this.#pool.abort(running, signal.reason);
      }, { once: true });
    }
    current.set(signal, job);
  }
}
