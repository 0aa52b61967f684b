/**
 * What a pipeline can read: any `Iterable`, `AsyncIterable` or `ReadableStream`.
 * Sources are pulled lazily, one item at a time, so an endless source works.
 */
export type Source<T> = Iterable<T> | AsyncIterable<T> | ReadableStream<T>;

/**
 * The second argument of every stage function.
 *
 * @example Using the context in a stage
 * ```ts
 * import { map, pipeline, type TaskContext } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const seen: TaskContext[] = [];
 * await pipeline(map((x: string, ctx) => {
 *   seen.push(ctx);
 *   return x;
 * })).run(["a", "b"], { context: { user: 7 } }).collect();
 * assert.deepEqual(seen.map((c) => [c.index, c.workerId, c.stage]), [
 *   [0, 0, "map#1"],
 *   [1, 0, "map#1"],
 * ]);
 * assert.deepEqual(seen[0].context, { user: 7 });
 * ```
 */
export interface TaskContext {
  /**
   * Aborts when the run is cancelled (abort, a failure elsewhere, the consumer
   * leaving) and, with `timeoutMs`, when the attempt times out. Pass it on to
   * `fetch` and friends.
   */
  readonly signal: AbortSignal;
  /** The worker slot running this call, stable within a stage: `0` to `concurrency - 1`. */
  readonly workerId: number;
  /** The item's id: its input index unless `run(source, { id })` provides one. */
  readonly itemId: unknown;
  /** The item's position in the input (for a batch: of its first item). */
  readonly index: number;
  /** The attempt number, from `1`. */
  readonly attempt: number;
  /** The name of the stage running the call. */
  readonly stage: string;
  /** The `context` given to `run()`: side inputs, fresh for every run. */
  readonly context: unknown;
}

/** What an `onError` handler decides for an item that failed for good. */
export type ErrorDecision = "fail" | "skip" | { value: unknown };

/**
 * What a stage does with an item that failed for good (after its retries):
 * `"fail"` rejects the run with a `PipelineError` and cancels the rest;
 * `"skip"` drops the item, records it in `flow.failures` and fires
 * `"skipped"`; a handler decides per error (sync or async), and may return
 * `{ value }` to use in place of the result. A handler that throws fails the
 * run with that error as `cause`.
 */
export type OnError =
  | "fail"
  | "skip"
  | ((
    error: unknown,
    item: unknown,
    ctx: TaskContext,
  ) => ErrorDecision | PromiseLike<ErrorDecision>);

/** The `rateLimit` option: at most `limit` starts in any `intervalMs` window. */
export interface RateLimit {
  /** Starts allowed per sliding window. */
  limit: number;
  /** Window length in milliseconds. */
  intervalMs: number;
}

/**
 * The `concurrency` option of `map`, `filter` and `Pool` when the stage finds
 * its own limit: it raises the limit while latency holds and cuts it on
 * overload (an error carrying HTTP 429 or 503, or one its `retryIf` calls
 * retryable) or on latency growth.
 */
export interface AdaptiveConcurrency {
  /** The limits the stage moves between. */
  readonly adaptive: {
    /** The lowest limit (a positive integer). */
    readonly min: number;
    /** The highest limit (an integer `>= min`). */
    readonly max: number;
    /** Where to start (default: `min`). */
    readonly initial?: number;
  };
}

/** One change of a stage's (or pool's) concurrency limit, in `stats()`. */
export interface LimitChange {
  /** `Date.now()` when the limit changed. */
  readonly at: number;
  /** The limit from then on. */
  readonly limit: number;
}
