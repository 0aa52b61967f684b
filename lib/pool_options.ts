// The options of a Pool and of its calls, with their documentation.
import type { AdaptiveConcurrency, RateLimit } from "./types.ts";
import type { RetryOptions } from "./retry.ts";

/**
 * Options of {@linkcode Pool}.
 *
 * @example Ten slots, retries, a deadline per attempt, a rate limit
 * ```ts
 * import { Pool, type PoolOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const options: PoolOptions = {
 *   concurrency: 10,
 *   retry: { attempts: 3, delayMs: 1 },
 *   timeoutMs: 5_000,
 *   rateLimit: { limit: 100, intervalMs: 1_000 },
 * };
 * await using pool = new Pool(options);
 * let calls = 0;
 * const flaky = () => {
 *   if (++calls < 3) throw new Error("503");
 *   return "ok";
 * };
 * assert.equal(await pool.submit(flaky), "ok");
 * assert.equal(calls, 3);
 * ```
 */
export interface PoolOptions {
  /**
   * Worker slots: never more tasks running at once than this. Each slot has a
   * stable `ctx.workerId`, `0` to `concurrency - 1` (up to the highest limit
   * the pool had, when `pool.concurrency` changes). `Infinity` is allowed.
   *
   * `{ adaptive: { min, max, initial? } }` makes the pool find its own limit,
   * from `min` to `max` (starting at `initial`, by default `min`): after each
   * attempt the limit is fed the attempt's duration and whether it signalled
   * overload (an HTTP 429 or 503 carried as `error.status`,
   * `error.statusCode`, `error.response.status` or a thrown `Response`; or an
   * error that `retry.retryIf` calls retryable); it rises while latency
   * holds and drops on overload. `pool.concurrency` reads the current limit
   * and cannot be set; `pool.stats().adaptive` shows it and its history.
   * @default {1}
   */
  concurrency?: number | AdaptiveConcurrency;
  /**
   * At most `limit` task starts (retries included) in any sliding window of
   * `intervalMs`: no bursts at window edges.
   * @default {undefined}
   */
  rateLimit?: RateLimit;
  /**
   * Retry failed tasks with exponential backoff and full jitter; see
   * {@linkcode RetryOptions} (`scope` does not apply to a pool). A task waiting
   * out a backoff holds no slot; it then goes back into the queue with its
   * priority and its original place among equal priorities, so it runs before
   * tasks submitted after it.
   * @default {undefined}
   */
  retry?: RetryOptions;
  /**
   * Time limit per attempt: `ctx.signal` aborts with a `TimeoutError` and the
   * attempt fails with it (then `retry` applies as to any error). The slot is
   * held until the function returns, so pass `ctx.signal` on.
   * @default {undefined}
   */
  timeoutMs?: number;
  /**
   * Aborting it is `close({ cancelPending: true })` with the signal's reason:
   * queued tasks reject with it and running ones see their `ctx.signal` abort.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Pool.prototype.run}.
 *
 * @example An urgent task goes ahead of the queue
 * ```ts
 * import { Pool, type PoolRunOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ concurrency: 1 });
 * pool.pause();
 * const order: string[] = [];
 * const normal = pool.run(() => order.push("normal"));
 * const urgent: PoolRunOptions = { priority: 1 };
 * const first = pool.run(() => order.push("urgent"), urgent);
 * pool.resume();
 * await Promise.all([normal, first]);
 * assert.deepEqual(order, ["urgent", "normal"]);
 * ```
 */
export interface PoolRunOptions {
  /**
   * Aborting it while the task waits removes it from the queue (its promise
   * rejects with the signal's reason); while it runs, its `ctx.signal` aborts
   * with that reason and the promise settles with what the function does; no
   * retry follows an abort.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Higher runs first; equal priorities run first in, first out. Any finite
   * number.
   * @default {0}
   */
  priority?: number;
}

/**
 * Options of {@linkcode Pool.prototype.map}.
 *
 * @example Completion order and a small read-ahead
 * ```ts
 * import { Pool, type PoolMapOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ concurrency: 3 });
 * const options: PoolMapOptions = { order: "completion", bufferSize: 3 };
 * const wait = (ms: number) => new Promise((r) => setTimeout(r, ms, ms));
 * const out: unknown[] = [];
 * for await (const ms of pool.map(wait, [30, 1, 15], options)) out.push(ms);
 * assert.deepEqual(out, [1, 15, 30]);
 * ```
 */
export interface PoolMapOptions {
  /**
   * `"input"` yields results in input order, each as soon as it and every
   * earlier one are done; `"completion"` yields each as soon as it is done.
   * @default {"input"}
   */
  order?: "input" | "completion";
  /**
   * Aborting it stops the iteration: it rejects with the signal's reason, the
   * map's queued tasks are dropped and its running ones see `ctx.signal` abort.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Priority of the map's tasks in the pool's queue; see
   * {@linkcode PoolRunOptions.priority}.
   * @default {0}
   */
  priority?: number;
  /**
   * Read-ahead budget: items read from the input and not yet yielded (running,
   * queued, or done and waiting for their turn) never exceed this. The same
   * default as a pipeline run's `bufferSize`, so a slow item does not stall
   * the others (head-of-line blocking); lower it for big items. The map has
   * at most `concurrency + 1` of its tasks in the pool at once (running or
   * queued; fewer when `bufferSize` is smaller): with the pool to itself, one
   * task waits in the pool's queue and starts the moment a slot frees; in a
   * shared pool, at most that many wait among the other tasks.
   * @default {1024}
   */
  bufferSize?: number;
}

/**
 * Options of {@linkcode Pool.prototype.close}.
 *
 * @example Drain, or cancel what has not started
 * ```ts
 * import { Pool, type PoolCloseOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ concurrency: 1 });
 * const running = pool.submit(async () => "done");
 * const queued = pool.submit(async () => "never");
 * const options: PoolCloseOptions = { cancelPending: true };
 * await pool.close(options);
 * assert.equal(await running, "done");
 * await assert.rejects(queued, { name: "AbortError" });
 * ```
 */
export interface PoolCloseOptions {
  /**
   * `false`: drain (queued tasks still run). `true`: every queued task (and
   * every task waiting out a retry backoff) rejects at once with a
   * `DOMException` named `"AbortError"`, and running tasks see their
   * `ctx.signal` abort with it.
   * @default {false}
   */
  cancelPending?: boolean;
}
