// Pool.map(): one run of the pipeline engine over the input, through a map
// stage whose calls are the pool's tasks.
import { DEFAULT_PROGRESS_INTERVAL_MS } from "./flow.ts";
import { PipelineError } from "./errors.ts";
import { leaveRun } from "./_leave_run.ts";
import { DONE_RESULT } from "./_run.ts";
import { map } from "./map.ts";
import { MapFailure, type MapGroup } from "./_pool_job.ts";
import { type NamedSpec, Scheduler } from "./_scheduler.ts";
import { specOf } from "./stage.ts";
import type { Source, TaskContext } from "./types.ts";

/** What a map needs from its pool. */
export interface MapHost {
  /**
   * Submits `fn(item, ctx)` as a pool task with the item's `index`, the map's
   * `priority`, and `signal` (aborting it drops the task from the queue, or
   * aborts the running task's `ctx.signal`). Rejects with a `MapFailure`.
   */
  submit(
    fn: (item: unknown, ctx: TaskContext) => unknown,
    item: unknown,
    index: number,
    priority: number,
    signal: AbortSignal,
    group: MapGroup,
  ): Promise<unknown>;
  /** The pool's `TypeError` when it takes no new task, else `undefined`. */
  closedError(): TypeError | undefined;
  /** The pool's concurrency now. */
  concurrency(): number;
  /** Calls `cb` with each new concurrency; returns the unsubscriber. */
  watchConcurrency(cb: (n: number) => void): () => void;
}

/** One map, validated. */
export interface MapRun {
  fn: (item: unknown, ctx: TaskContext) => unknown;
  items: Source<unknown>;
  ordered: boolean;
  signal: AbortSignal | undefined;
  priority: number;
  /** Items read and not yet yielded, the map's tasks included, at most. */
  bufferSize: number;
}

/**
 * The map stage's concurrency (its tasks in the pool at most) for a pool of
 * `n` slots: one task more, which waits in the pool's queue to take the next
 * free slot at once. Within the budget: it counts the map's tasks too.
 */
function width(n: number, bufferSize: number): number {
  return Math.min(n + 1, bufferSize);
}

/** The map's own tasks failed with a boxed error: rethrown as it was. */
function unwrap(error: unknown): never {
  if (error instanceof PipelineError && error.cause instanceof MapFailure) {
    throw error.cause.error;
  }
  throw error; // an input error, an abort reason, the closed pool's TypeError
}

/**
 * The iterator `Pool.map()` returns. Lazy: the run starts at the first
 * `next()`. `return()` stops it and resolves once the running tasks have
 * returned; the engine restores input order and bounds the read-ahead.
 */
export class PoolMapIterator<R> implements AsyncGenerator<R, void, undefined> {
  #host: MapHost | undefined;
  #run: MapRun | undefined;
  #engine: Scheduler | undefined = undefined;

  constructor(host: MapHost, run: MapRun) {
    this.#host = host;
    this.#run = run;
  }

  /** Starts the run (once; not after `return()`). */
  #open(): Scheduler | undefined {
    const host = this.#host;
    const run = this.#run;
    if (host === undefined || run === undefined) return undefined;
    this.#host = this.#run = undefined;
    const { fn, priority, bufferSize } = run;
    const group: MapGroup = { failedAt: Infinity, current: new Map() };
    const concurrency = width(host.concurrency(), bufferSize);
    const stage = map(
      (item: unknown, ctx: TaskContext) =>
        host.submit(fn, item, ctx.index, priority, ctx.signal, group),
      { concurrency },
    );
    const specs: NamedSpec[] = [{ spec: specOf(stage)!, name: "Pool.map" }];
    const engine = this.#engine = new Scheduler(specs, run.items, {
      ordered: run.ordered,
      failAtTurn: true,
      signal: run.signal,
      id: undefined,
      bufferSize: bufferSize - concurrency,
      context: undefined,
      target: new EventTarget(),
      failures: [],
      progressIntervalMs: DEFAULT_PROGRESS_INTERVAL_MS,
    });
    const closed = host.closedError();
    if (closed !== undefined) engine.stop(closed);
    // The map follows the pool's concurrency (set, or adaptive), within the
    // same read-ahead budget.
    const unwatch = host.watchConcurrency((n) => {
      const c = width(n, bufferSize);
      engine.setConcurrency(0, c, bufferSize - c);
    });
    engine.settled().then(unwatch);
    return engine;
  }

  next(): Promise<IteratorResult<R, void>> {
    const engine = this.#engine ?? this.#open();
    if (engine === undefined) return Promise.resolve(DONE_RESULT);
    return engine.next().then(
      undefined,
      unwrap,
    ) as Promise<IteratorResult<R, void>>;
  }

  return(): Promise<IteratorResult<R, void>> {
    this.#host = this.#run = undefined; // never started: nothing to stop
    const engine = this.#engine;
    if (engine === undefined) return Promise.resolve(DONE_RESULT);
    return leaveRun(engine, "The map iteration was stopped");
  }

  async throw(error: unknown): Promise<IteratorResult<R, void>> {
    await this.return();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}
