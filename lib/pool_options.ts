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
 *
 * @example A bounded queue: tasks beyond it wait for room
 * ```ts
 * import { Pool } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ concurrency: 1, maxQueued: 1 });
 * const tasks = [1, 2, 3, 4].map((x) => pool.submit(async () => x * 10));
 * // One runs, one is queued, two wait for room (in arrival order).
 * assert.equal(pool.stats().queued, 1);
 * assert.equal(pool.stats().waiting, 2);
 * assert.deepEqual(await Promise.all(tasks), [10, 20, 30, 40]);
 * ```
 *
 * @example A bounded queue: tasks beyond it are refused
 * ```ts
 * import { Pool, QueueFullError } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ concurrency: 1, maxQueued: 1, onFull: "reject" });
 * let finish = () => {};
 * const running = pool.submit(() => new Promise<void>((r) => (finish = r)));
 * const queued = pool.submit(async () => "queued");
 * await assert.rejects(pool.submit(async () => "refused"), QueueFullError);
 * finish();
 * await running;
 * assert.equal(await queued, "queued");
 * // Room again: taken.
 * assert.equal(await pool.submit(async () => "taken"), "taken");
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
   * Tasks in the queue (waiting for a slot) at most, for a new one to enter:
   * a bound for producers that submit faster than the pool runs (p-queue's
   * backpressure for `add`). A task that starts at once never waits. When
   * the queue holds `maxQueued` tasks, a new `submit()` or `run()` waits for
   * room or is refused, as `onFull` says. Tasks waiting out a retry backoff
   * do not count (they were taken already): back from it they re-enter the
   * queue even when it is full, so `stats().queued` can exceed `maxQueued`
   * by them for a while. A positive integer or `Infinity`.
   *
   * `map()`'s tasks count and wait like the others (at most
   * `concurrency + 1` of one map are in the pool), but never are refused:
   * with `onFull: "reject"` they wait too, the map reading no further
   * meanwhile.
   * @default {Infinity}
   */
  maxQueued?: number;
  /**
   * What a `submit()` or `run()` does when the queue holds `maxQueued` tasks:
   *
   * - `"wait"`: its promise waits for room, outside the pool, in arrival
   *   order whatever its priority (a task waiting for room goes before any
   *   later one); it enters the queue when a queued task starts or leaves.
   *   Until then it is not taken: no id, no `queued` event, not counted in
   *   `submitted` or `pending` (`stats().waiting` counts it). A `run()`
   *   task's `signal` ends the wait (its promise rejects with the reason);
   *   `close()` lets the waiting tasks enter as room frees and drains them;
   *   `close({ cancelPending: true })` rejects them with the `AbortError`.
   * - `"reject"`: its promise rejects at once with a
   *   {@linkcode QueueFullError} whose message names the bound and the state
   *   (`maxQueueSize` holds the bound); the task is not taken.
   * @default {"wait"}
   */
  onFull?: "wait" | "reject";
  /**
   * Aborting it is `close({ cancelPending: true })` with the signal's reason:
   * queued tasks reject with it and running ones see their `ctx.signal` abort.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Pool.prototype.run}. A task given `retry` or
 * `timeoutMs` takes the pool's slow path (every attempt timed); tasks
 * without them are not slowed.
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
 *
 * @example One call with its own retry and deadline
 * ```ts
 * import { Pool, TimeoutError } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ retry: { attempts: 5, delayMs: 1 }, timeoutMs: 60_000 });
 * let calls = 0;
 * const fails = () => {
 *   calls++;
 *   throw new Error("not found");
 * };
 * // Not worth retrying: one attempt for this call.
 * await assert.rejects(pool.run(fails, { retry: { attempts: 1 } }), /not found/);
 * assert.equal(calls, 1);
 * // A short deadline for this call (passed on as ctx.signal).
 * const slow = pool.run(
 *   (ctx) => new Promise((_, reject) => {
 *     ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
 *   }),
 *   { timeoutMs: 5, retry: { attempts: 2 } },
 * );
 * await assert.rejects(slow, TimeoutError);
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
  /**
   * This task's retry, over the pool's `retry`: the fields given replace the
   * pool's, the others stay the pool's (or take their defaults when the
   * pool has no retry). `{ attempts: 1 }` turns retrying off for this task;
   * `false` and `null` are refused, as for the pool. Validated as the
   * pool's option.
   * @default {undefined}
   */
  retry?: RetryOptions;
  /**
   * This task's time limit per attempt, instead of the pool's `timeoutMs`;
   * `Infinity` for none (even when the pool has one).
   * @default {undefined}
   */
  timeoutMs?: number;
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
