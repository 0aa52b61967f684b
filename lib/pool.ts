import type { RetryPolicy } from "./retry.ts";
import type { FlowListener, FlowListenerOptions } from "./flow.ts";
import type { PoolEventMap, PoolStats } from "./pool_stats.ts";
import type { Source, TaskContext } from "./types.ts";
import type { AnyFn } from "./_pool_job.ts";
import { PoolCore } from "./_pool_core.ts";
import { PoolMapIterator } from "./_pool_map.ts";
import type {
  PoolCloseOptions,
  PoolMapOptions,
  PoolOptions,
  PoolRunOptions,
} from "./pool_options.ts";
import {
  readMapOptions,
  readPoolOptions,
  readRunOptions,
} from "./_pool_read_options.ts";
import {
  assertBoolean,
  assertFunction,
  assertInteger,
  assertOptions,
} from "./_validate.ts";

/**
 * An executor: call async functions with at most `concurrency` running at
 * once, by priority, with optional retries, per-attempt timeouts and a rate
 * limit. Calls, not a stream: `submit()` and `run()` return the promise of one
 * result; `map()` streams the results of a function over an iterable.
 *
 * Behaviour where one could wonder:
 * - A task starts at once (inside `submit()`/`run()`) when a slot is free;
 *   otherwise it is queued. Higher `priority` first, equal priorities first
 *   in, first out. Workers keep their slot index (`ctx.workerId`) for good.
 * - `active` counts running tasks; `pending` counts tasks waiting to start:
 *   queued, or waiting out a retry backoff. `active + pending` is the number
 *   of tasks whose promise has not settled, plus `stats().waiting` with
 *   `maxQueued`.
 * - `maxQueued` bounds the queue: a task arriving when it is full waits for
 *   room outside the pool, in arrival order, not taken yet (`onFull:
 *   "wait"`, the default), or is refused with a `QueueFullError`
 *   (`onFull: "reject"`). Tasks backing off before a retry do not count.
 *   The line of waiting tasks is not bounded itself: a producer that must
 *   slow down awaits its tasks, `onSizeLessThan()`, or takes the refusals.
 * - `onIdle()` resolves when no task is running, queued or backing off
 *   (`active + pending === 0`); `onSizeLessThan(n)` when `pending < n`. Both
 *   resolve at once when already true and never reject.
 * - `pause()` stops starting tasks; running tasks go on undisturbed (their
 *   `ctx.signal` does not abort) and retry backoffs keep counting down (the
 *   task then waits in the queue). `resume()` starts what the free slots allow.
 * - `close()` stops taking tasks (`submit()`/`run()` then reject with a
 *   `TypeError`), resumes a paused pool and resolves once every task has
 *   settled (those waiting for room enter and run as room frees). `close({ cancelPending: true })` rejects every waiting task at
 *   once and aborts the running ones' `ctx.signal`; a running task's promise
 *   still settles with what its function does (nothing is left running behind
 *   a settled promise), and no retry follows.
 * - Every promise the pool returns settles, whatever happens.
 * - `concurrency` can change while the pool runs (`pool.concurrency = n`, or
 *   by itself with `concurrency: { adaptive }`): raising it starts queued
 *   tasks at once; lowering it interrupts nothing, and no task starts until
 *   fewer than the new limit run.
 * - A pool is an `EventTarget`: see {@linkcode PoolEventMap} for its events
 *   (`queued`, `active`, `completed`, `retrying`, `failed`, `cancelled`,
 *   `idle`, `concurrency`), dispatched only once someone listens; `stats()`
 *   gives its counters.
 * - `await using pool = new Pool(...)` calls `close()` at the end of the scope:
 *   it drains, like a `concurrent.futures` executor's `with` block.
 *
 * @example Priorities: higher first, equal ones first in, first out
 * ```ts
 * import { Pool } from "sluice";
 * import assert from "node:assert/strict";
 *
 * await using pool = new Pool({ concurrency: 1 });
 * const order: string[] = [];
 * let unblock = () => {};
 * const blocker = pool.run(() => new Promise<void>((r) => (unblock = r)));
 * const tasks = [["low", 1], ["critical", 10], ["medium", 5], ["high", 8]] as const;
 * const done = tasks.map(([name, priority]) =>
 *   pool.run(() => order.push(name), { priority })
 * );
 * unblock();
 * await Promise.all([blocker, ...done]);
 * assert.deepEqual(order, ["critical", "high", "medium", "low"]);
 * ```
 *
 * @example Submit, map, close
 * ```ts
 * import { Pool } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ concurrency: 4, retry: { attempts: 2, delayMs: 1 } });
 * const add = async (a: number, b: number) => a + b;
 * assert.equal(await pool.submit(add, 2, 3), 5);
 * const out: number[] = [];
 * for await (const x of pool.map(async (x: number) => x * 10, [1, 2, 3])) {
 *   out.push(x);
 * }
 * assert.deepEqual(out, [10, 20, 30]);
 * await pool.close();
 * await assert.rejects(pool.submit(add, 1, 1), TypeError);
 * ```
 */
export class Pool extends EventTarget implements AsyncDisposable {
  /** The running machinery; this class validates and delegates. */
  readonly #core: PoolCore;
  /** The pool's retry and timeout, which a `run()` call can override. */
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;

  /**
   * Makes a pool.
   *
   * @param options Concurrency (fixed or adaptive), rate limit, retry,
   * timeout, queue bound (`maxQueued`, `onFull`) and signal.
   * @throws {TypeError} When an option has the wrong type or name
   * (`onFull: "drop"`).
   * @throws {RangeError} When a number is out of range (`concurrency: 0`,
   * `maxQueued: 0`).
   */
  constructor(options?: PoolOptions) {
    super();
    const config = readPoolOptions(options);
    this.#retry = config.retry;
    this.#timeoutMs = config.timeoutMs;
    this.#core = new PoolCore(
      config.concurrency,
      config.retry,
      config.timeoutMs,
      config.limiter,
      config.maxQueued,
      config.rejects,
      config.signal,
      this,
    );
  }

  /**
   * The limit of tasks running at once: the `concurrency` option, as last
   * set, or the adaptive limit now.
   *
   * Setting it changes the limit at once: raising it starts queued tasks
   * before the setter returns (as the free slots, a pause and the rate limit
   * allow); lowering it interrupts no running task, and no task starts until
   * fewer than the new limit run. `ctx.workerId` stays unique among running
   * tasks; ids may reach the highest limit the pool had, minus one. A
   * `concurrency` event (`reason: "set"`) fires when the value changes.
   * Allowed while the pool drains after `close()`.
   *
   * @throws {TypeError} When set to a non-number, on a pool with an adaptive
   * limit, or on a pool that was cancelled or has finished draining.
   * @throws {RangeError} When set to something other than a positive integer
   * or `Infinity`.
   *
   * @example Raising the limit starts queued tasks at once
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 1 });
   * const wait = () => new Promise((r) => setTimeout(r, 5));
   * for (let i = 0; i < 4; i++) pool.submit(wait);
   * assert.equal(pool.active, 1);
   * pool.concurrency = 3;
   * assert.equal(pool.active, 3);
   * assert.equal(pool.stats().concurrency, 3);
   * ```
   */
  get concurrency(): number {
    return this.#core.concurrency;
  }

  set concurrency(n: number) {
    assertInteger("concurrency", n, 1, true);
    this.#core.setConcurrency(n);
  }

  /**
   * A snapshot of the pool's counters; see {@linkcode PoolStats}. Counts
   * balance exactly: `submitted === completed + failed + cancelled + active +
   * pending`. Latency figures are sampled (one attempt in 128) for trivial
   * tasks, unless a listener needs every duration.
   *
   * @returns The counters now.
   *
   * @example Counting what ran
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * await Promise.allSettled([
   *   pool.submit(async () => 1),
   *   pool.submit(async () => 2),
   *   pool.submit(async () => { throw new Error("no"); }),
   * ]);
   * const stats = pool.stats();
   * assert.equal(stats.submitted, 3);
   * assert.equal(stats.completed, 2);
   * assert.equal(stats.failed, 1);
   * assert.equal(stats.active + stats.pending, 0);
   * assert.equal(stats.workers.length, 2);
   * ```
   */
  stats(): PoolStats {
    return this.#core.stats();
  }

  /**
   * Listens to an event of the pool; see {@linkcode PoolEventMap}. Events
   * are dispatched only once a listener for their type was added: without
   * one they cost nothing. Listening to `completed`, `retrying` or `failed`
   * times every attempt from then on (their `durationMs`).
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   *
   * @example A task's life, in events
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 1 });
   * const seen: string[] = [];
   * for (const type of ["queued", "active", "completed", "idle"] as const) {
   *   pool.addEventListener(type, (e) => seen.push(e.type));
   * }
   * await pool.submit(async () => "done");
   * await pool.onIdle();
   * assert.deepEqual(seen, ["queued", "active", "completed", "idle"]);
   * ```
   *
   * @example Watching failures and the limit
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * const failures: unknown[] = [];
   * pool.addEventListener("failed", (e) => failures.push(e.detail.error));
   * const changes: string[] = [];
   * pool.addEventListener("concurrency", (e) =>
   *   changes.push(`${e.detail.from}->${e.detail.to} (${e.detail.reason})`)
   * );
   * await pool.submit(async () => { throw new Error("boom"); }).catch(() => {});
   * pool.concurrency = 4;
   * assert.equal((failures[0] as Error).message, "boom");
   * assert.deepEqual(changes, ["2->4 (set)"]);
   * ```
   */
  override addEventListener<K extends keyof PoolEventMap>(
    type: K,
    listener: (this: Pool, event: PoolEventMap[K]) => void,
    options?: boolean | FlowListenerOptions,
  ): void;
  /**
   * Listens to any event (the generic `EventTarget` signature).
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override addEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | FlowListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | FlowListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    if (listener !== null) this.#core.listen(type);
  }

  /**
   * Removes a listener added with `addEventListener`.
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override removeEventListener<K extends keyof PoolEventMap>(
    type: K,
    listener: (this: Pool, event: PoolEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener (the generic `EventTarget` signature).
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override removeEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
  }

  /** Tasks running now. */
  get active(): number {
    return this.#core.active;
  }

  /** Tasks waiting to start: queued, or waiting out a retry backoff. */
  get pending(): number {
    return this.#core.pending;
  }

  /** Whether `close()` was called (or the pool's `signal` aborted). */
  get closed(): boolean {
    return this.#core.closed;
  }

  /** Whether `pause()` was called and not undone by `resume()` or `close()`. */
  get paused(): boolean {
    return this.#core.paused;
  }

  /**
   * Calls `fn(...args)` in a worker slot: at once if one is free (before
   * `submit()` returns), otherwise when one frees, at priority `0`.
   *
   * @param fn The function.
   * @param args Its arguments.
   * @returns The promise of its result: it rejects with the function's error
   * (after the retries), with a `TimeoutError`, with the abort reason when the
   * pool cancels it, with a `TypeError` when the pool is closed, or with a
   * `QueueFullError` when the queue holds `maxQueued` tasks and `onFull` is
   * `"reject"` (with `"wait"`, the promise waits for room first).
   * @throws {TypeError} When `fn` is not a function.
   *
   * @example Calls with arguments, in parallel
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * const square = async (x: number) => x * x;
   * assert.deepEqual(
   *   await Promise.all([1, 2, 3].map((x) => pool.submit(square, x))),
   *   [1, 4, 9],
   * );
   * ```
   */
  submit<A extends unknown[], R>(
    fn: (...args: A) => R | PromiseLike<R>,
    ...args: A
  ): Promise<R> {
    assertFunction("fn", fn);
    return this.#core.submit(fn as AnyFn, args) as Promise<R>;
  }

  /**
   * Calls `fn(ctx)` in a worker slot, by priority. `ctx` is a
   * {@linkcode TaskContext}: `signal` (aborts on cancel, on this task's
   * `signal`, or when the attempt times out), `workerId` (the slot, `0` to
   * `concurrency - 1`; unique among running tasks, below the highest limit
   * the pool had), `attempt` (from `1`), `index` and `itemId` (the task's
   * submission number), `stage` (`"pool"`) and `context` (`undefined`).
   *
   * `retry` and `timeoutMs` override the pool's for this task (see
   * {@linkcode PoolRunOptions}): the fields of `retry` given replace the
   * pool's; `timeoutMs: Infinity` runs it without a deadline.
   *
   * @param fn The function.
   * @param options `signal`, `priority`, `retry`, `timeoutMs`.
   * @returns The promise of its result (see {@linkcode Pool.prototype.submit});
   * it rejects with `signal.reason` when the task is aborted before it starts
   * (or while it waits for room).
   * @throws {TypeError} When `fn` is not a function or an option has the wrong
   * type or name.
   * @throws {RangeError} When `priority` is not finite or a `retry` or
   * `timeoutMs` value is out of range.
   *
   * @example A task that can be aborted
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool();
   * const controller = new AbortController();
   * const task = pool.run((ctx) =>
   *   new Promise((_, reject) => {
   *     ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
   *   }), { signal: controller.signal });
   * controller.abort(new Error("no longer needed"));
   * await assert.rejects(task, /no longer needed/);
   * ```
   *
   * @example This call retries, though the pool does not
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * const attempts: number[] = [];
   * const value = await pool.run((ctx) => {
   *   attempts.push(ctx.attempt);
   *   if (ctx.attempt < 3) throw new Error("flaky");
   *   return "ok";
   * }, { retry: { attempts: 3, delayMs: 1 } });
   * assert.equal(value, "ok");
   * assert.deepEqual(attempts, [1, 2, 3]);
   * ```
   */
  run<R>(
    fn: (ctx: TaskContext) => R | PromiseLike<R>,
    options?: PoolRunOptions,
  ): Promise<R> {
    assertFunction("fn", fn);
    const { signal, priority, tuning } = readRunOptions(
      options,
      this.#retry,
      this.#timeoutMs,
    );
    return this.#core.run(fn as AnyFn, priority, signal, tuning) as Promise<
      R
    >;
  }

  /**
   * Streams `fn(item, ctx)` over `items` (an `Iterable`, `AsyncIterable` or
   * `ReadableStream`, as a pipeline reads them) through the pool's slots: one
   * run of the pipeline engine through a map stage whose calls are the
   * pool's tasks (with its retry, timeout and rate limit).
   *
   * - Lazy: nothing is read before the first `next()`. Items read and not
   *   yet yielded never exceed `bufferSize`, and at most `concurrency + 1` of
   *   the map's tasks are in the pool at once (running, queued or backing
   *   off): with the pool to itself, one waits in the queue and starts the
   *   moment a slot frees; other tasks submitted meanwhile get slots in turn
   *   (by priority, then arrival). An endless input works.
   * - `order: "input"` (default) yields in input order, each result as soon
   *   as it and every earlier one are done; `"completion"` in completion
   *   order.
   * - A failure (after retries) stops reading and rejects the iteration with
   *   the task's error at that item's turn (in input order, after every
   *   earlier result); the map's later tasks do not start, and those still
   *   running see `ctx.signal` abort at that turn. In completion order the
   *   iteration rejects at once and the running tasks are aborted. An input
   *   that throws fails the same way at the position of the item it could
   *   not give.
   * - Leaving the loop early (`break`, `return()`), the map's `signal` or the
   *   pool's cancel drops the map's queued tasks, aborts the running ones'
   *   `ctx.signal` and closes the input (`return()`, or `cancel()` of a
   *   stream); `break` resumes once the running ones have returned.
   * - `close()` (drain) lets the map's tasks already in the pool finish; the
   *   map reads no more and rejects with the pool's `TypeError` at the turn
   *   of the first item it could not submit.
   *
   * `ctx` is as for `run()`, with `index` and `itemId` the item's position in
   * `items`.
   *
   * @param fn The function, called as `fn(item, ctx)`.
   * @param items The input.
   * @param options `order`, `signal`, `priority`, `bufferSize`.
   * @returns An async generator of the results.
   * @throws {TypeError} When `fn` is not a function, `items` not readable, or
   * an option has the wrong type.
   * @throws {RangeError} When `bufferSize` is not a positive integer or
   * `priority` not finite.
   *
   * @example Input order, an endless input read lazily
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 3 });
   * function* naturals() {
   *   for (let i = 0; ; i++) yield i;
   * }
   * const out: number[] = [];
   * for await (const x of pool.map(async (x: number) => x * x, naturals())) {
   *   out.push(x);
   *   if (out.length === 5) break;
   * }
   * assert.deepEqual(out, [0, 1, 4, 9, 16]);
   * ```
   */
  map<T, R>(
    fn: (item: T, ctx: TaskContext) => R | PromiseLike<R>,
    items: Source<T>,
    options?: PoolMapOptions,
  ): AsyncGenerator<R, void, undefined> {
    assertFunction("fn", fn);
    return new PoolMapIterator<R>(
      this.#core.mapHost,
      readMapOptions(
        fn as (item: unknown, ctx: TaskContext) => unknown,
        items,
        options,
      ),
    );
  }

  /**
   * Resolves when no task is running, queued or waiting out a retry backoff;
   * at once if that is already so. Never rejects.
   *
   * @returns A promise that resolves when the pool is idle.
   *
   * @example Waiting for everything submitted
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * let done = 0;
   * for (let i = 0; i < 5; i++) pool.submit(async () => done++);
   * await pool.onIdle();
   * assert.equal(done, 5);
   * assert.equal(pool.active + pool.pending, 0);
   * ```
   */
  onIdle(): Promise<void> {
    return this.#core.onIdle();
  }

  /**
   * Resolves when fewer than `limit` tasks are waiting to start
   * (`pending < limit`); at once if that is already so. Never rejects. Use
   * it to bound memory when producing tasks faster than they run.
   *
   * @param limit A positive integer (or `Infinity`).
   * @returns A promise that resolves when `pending < limit`.
   * @throws {TypeError} When `limit` is not a number.
   * @throws {RangeError} When `limit` is not a positive integer or `Infinity`.
   *
   * @example Backpressure for a producer
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool({ concurrency: 2 });
   * let most = 0;
   * for (let i = 0; i < 50; i++) {
   *   await pool.onSizeLessThan(4);
   *   pool.submit(() => new Promise((r) => setTimeout(r, 1)));
   *   most = Math.max(most, pool.pending);
   * }
   * assert(most <= 4);
   * ```
   */
  onSizeLessThan(limit: number): Promise<void> {
    assertInteger("limit", limit, 1, true);
    return this.#core.onSizeLessThan(limit);
  }

  /**
   * Stops starting tasks. Running tasks go on undisturbed; tasks keep being
   * accepted and queued. Does nothing on a closed pool (`close()` drains).
   *
   * @example Holding tasks back
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * await using pool = new Pool();
   * pool.pause();
   * let ran = false;
   * const task = pool.submit(() => (ran = true));
   * await new Promise((r) => setTimeout(r, 5));
   * assert.equal(ran, false);
   * assert.equal(pool.pending, 1);
   * pool.resume();
   * assert.equal(await task, true);
   * ```
   */
  pause(): void {
    this.#core.pause();
  }

  /** Starts queued tasks again, as many as the free slots (and the rate limit) allow. */
  resume(): void {
    this.#core.resume();
  }

  /**
   * Stops taking tasks and resolves once every task has settled. Without
   * options it drains: queued tasks still run (a paused pool is resumed).
   * With `{ cancelPending: true }`, every waiting task rejects at once with a
   * `DOMException` named `"AbortError"` and the running tasks' `ctx.signal`
   * aborts with it. It may be called again: a later `cancelPending` turns a
   * drain into a cancel.
   *
   * @param options `cancelPending`.
   * @returns A promise that resolves when every task has settled. Never rejects.
   * @throws {TypeError} When an option has the wrong type.
   *
   * @example Cancelling what is queued
   * ```ts
   * import { Pool } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const pool = new Pool({ concurrency: 1 });
   * const running = pool.run((ctx) =>
   *   new Promise((_, reject) =>
   *     ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
   *   )
   * );
   * const queued = pool.submit(async () => "never runs");
   * await pool.close({ cancelPending: true });
   * await assert.rejects(running, { name: "AbortError" });
   * await assert.rejects(queued, { name: "AbortError" });
   * ```
   */
  close(options?: PoolCloseOptions): Promise<void> {
    assertOptions("options", options, "pool.close()", ["cancelPending"]);
    const { cancelPending = false } = options ?? {};
    assertBoolean("cancelPending", cancelPending);
    return this.#core.close(cancelPending);
  }

  /**
   * `close()`: what `await using pool = new Pool(...)` calls at the end of the
   * scope. It drains. (Keyed `Symbol.asyncDispose`, which every tested
   * runtime has, Node from 20.4; a plain key keeps the class tree-shakeable.)
   *
   * @returns A promise that resolves when every task has settled.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
