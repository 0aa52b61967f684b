import { abortError } from "./errors.ts";
import { Deadline, retryDelay, SlotSignals } from "./_attempt.ts";
import { readRetry, type RetryPolicy } from "./retry.ts";
import type { Source, TaskContext } from "./types.ts";
import { PriorityQueue } from "./_priority_queue.ts";
import { RateLimiter, readRateLimit } from "./_rate_limiter.ts";
import {
  type AnyFn,
  apply,
  BACKOFF,
  DONE,
  Job,
  MAP,
  MapFailure,
  type MapGroup,
  QUEUED,
  RUN,
  RUNNING,
  SUBMIT,
} from "./_pool_job.ts";
import { type MapHost, PoolMapIterator } from "./_pool_map.ts";
import type {
  PoolCloseOptions,
  PoolMapOptions,
  PoolOptions,
  PoolRunOptions,
} from "./pool_options.ts";
import { isSource } from "./_source.ts";
import {
  assertBoolean,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  readTimeout,
  show,
} from "./_validate.ts";

const OPEN = 0;
const DRAINING = 1;
const CANCELLED = 2;

function readPriority(priority: unknown): number {
  if (typeof priority !== "number") {
    throw new TypeError(
      `'priority' must be a finite number: current value is ${show(priority)}`,
    );
  }
  if (!Number.isFinite(priority)) {
    throw new RangeError(
      `'priority' must be a finite number: current value is ${priority}`,
    );
  }
  return priority;
}

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
 *   of tasks whose promise has not settled.
 * - `onIdle()` resolves when no task is running, queued or backing off
 *   (`active + pending === 0`); `onSizeLessThan(n)` when `pending < n`. Both
 *   resolve at once when already true and never reject.
 * - `pause()` stops starting tasks; running tasks go on undisturbed (their
 *   `ctx.signal` does not abort) and retry backoffs keep counting down (the
 *   task then waits in the queue). `resume()` starts what the free slots allow.
 * - `close()` stops taking tasks (`submit()`/`run()` then reject with a
 *   `TypeError`), resumes a paused pool and resolves once every task has
 *   settled. `close({ cancelPending: true })` rejects every waiting task at
 *   once and aborts the running ones' `ctx.signal`; a running task's promise
 *   still settles with what its function does (nothing is left running behind
 *   a settled promise), and no retry follows.
 * - Every promise the pool returns settles, whatever happens.
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
export class Pool {
  readonly #concurrency: number;
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #limiter: RateLimiter | undefined;
  /** No retry, timeout or rate limit: the fast path. */
  readonly #plain: boolean;
  readonly #queue = new PriorityQueue<Job>();
  /**
   * One `ctx.signal` per slot, all aborted on cancel: a signal has one call's
   * listeners at most. A running map() task aborted alone aborts its slot's
   * signal, renewed before the slot's next task.
   */
  readonly #slots = new SlotSignals();
  readonly #signal: AbortSignal | undefined;
  #seq = 0;
  /** Slots in use (running tasks). */
  #active = 0;
  /** Tasks whose outcome is not settled yet. */
  #unsettled = 0;
  /** Freed slot indexes, reused so workerIds stay in `0..concurrency-1`. */
  readonly #freeSlots: number[] = [];
  #slotsMade = 0;
  /** Tasks waiting out a retry backoff. */
  readonly #backingOff = new Set<Job>();
  #paused = false;
  #state = OPEN;
  /** Aborts the pending rate-limit wait (set while one is pending). */
  #rateWait: AbortController | undefined;
  /** onIdle() and onSizeLessThan() waiters. */
  #idleWaiters: (() => void)[] = [];
  #sizeWaiters: { limit: number; resolve: () => void }[] = [];
  #waiters = 0;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #finished = false;
  /** What a map() run uses of the pool. */
  readonly #mapHost: MapHost = {
    submit: (fn, item, index, priority, signal, group) =>
      this.#submitMap(fn as AnyFn, item, index, priority, signal, group),
    closedError: () => this.#state === OPEN ? undefined : this.#closedError(),
  };

  /**
   * Makes a pool.
   *
   * @param options Concurrency, rate limit, retry, timeout and signal.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When a number is out of range (`concurrency: 0`).
   */
  constructor(options?: PoolOptions) {
    assertOptions("options", options);
    const {
      concurrency = 1,
      rateLimit,
      retry,
      timeoutMs,
      signal,
    } = options ?? {};
    assertInteger("concurrency", concurrency, 1, true);
    assertSignal(signal);
    const limit = readRateLimit(rateLimit);
    this.#concurrency = concurrency;
    this.#retry = readRetry(retry);
    this.#timeoutMs = readTimeout(timeoutMs);
    this.#limiter = limit && new RateLimiter(limit.limit, limit.intervalMs);
    this.#plain = this.#retry === undefined && this.#timeoutMs === undefined &&
      this.#limiter === undefined;
    this.#signal = signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#cancel(signal.reason);
      else signal.addEventListener("abort", this.#onSignal, { once: true });
    }
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting to start: queued, or waiting out a retry backoff. */
  get pending(): number {
    return this.#queue.size + this.#backingOff.size;
  }

  /** Whether `close()` was called (or the pool's `signal` aborted). */
  get closed(): boolean {
    return this.#state !== OPEN;
  }

  /** Whether `pause()` was called and not undone by `resume()` or `close()`. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Calls `fn(...args)` in a worker slot: at once if one is free (before
   * `submit()` returns), otherwise when one frees, at priority `0`.
   *
   * @param fn The function.
   * @param args Its arguments.
   * @returns The promise of its result: it rejects with the function's error
   * (after the retries), with a `TimeoutError`, with the abort reason when the
   * pool cancels it, or with a `TypeError` when the pool is closed.
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
    if (this.#state !== OPEN) return Promise.reject(this.#closedError());
    const job = new Job(
      SUBMIT,
      fn as AnyFn,
      args,
      undefined,
      0,
      this.#seq++,
      0,
      undefined,
    );
    const promise = new Promise<R>((resolve, reject) => {
      job.resolve = resolve as (value: unknown) => void;
      job.reject = reject;
    });
    this.#add(job);
    return promise;
  }

  /**
   * Calls `fn(ctx)` in a worker slot, by priority. `ctx` is a
   * {@linkcode TaskContext}: `signal` (aborts on cancel, on this task's
   * `signal`, or when the attempt times out), `workerId` (the slot, `0` to
   * `concurrency - 1`), `attempt` (from `1`), `index` and `itemId` (the task's
   * submission number), `stage` (`"pool"`) and `context` (`undefined`).
   *
   * @param fn The function.
   * @param options `signal` and `priority`.
   * @returns The promise of its result (see {@linkcode Pool.prototype.submit});
   * it rejects with `signal.reason` when the task is aborted before it starts.
   * @throws {TypeError} When `fn` is not a function or an option has the wrong
   * type.
   * @throws {RangeError} When `priority` is not finite.
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
   */
  run<R>(
    fn: (ctx: TaskContext) => R | PromiseLike<R>,
    options?: PoolRunOptions,
  ): Promise<R> {
    assertFunction("fn", fn);
    assertOptions("options", options);
    const { signal, priority = 0 } = options ?? {};
    assertSignal(signal);
    readPriority(priority);
    if (this.#state !== OPEN) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    const job = new Job(
      RUN,
      fn as AnyFn,
      undefined,
      undefined,
      priority,
      this.#seq,
      this.#seq++,
      signal,
    );
    const promise = new Promise<R>((resolve, reject) => {
      job.resolve = resolve as (value: unknown) => void;
      job.reject = reject;
    });
    if (signal !== undefined) {
      job.onAbort = () => this.#abortJob(job, signal.reason);
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    this.#add(job);
    return promise;
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
    if (!isSource(items)) {
      throw new TypeError(
        `'items' must be an Iterable, an AsyncIterable or a ReadableStream: current value is ${
          show(items)
        }`,
      );
    }
    assertOptions("options", options);
    const {
      order = "input",
      signal,
      priority = 0,
      bufferSize = 1024,
    } = options ?? {};
    assertOneOf("order", order, ["input", "completion"] as const);
    assertSignal(signal);
    readPriority(priority);
    assertInteger("bufferSize", bufferSize, 1);
    // One task more than the slots: one waits in the queue to take the next
    // free slot at once. Within the budget: it counts the map's tasks too.
    const concurrency = Math.min(this.#concurrency + 1, bufferSize);
    return new PoolMapIterator<R>(this.#mapHost, {
      fn: fn as (item: unknown, ctx: TaskContext) => unknown,
      items,
      ordered: order === "input",
      signal,
      priority,
      concurrency,
      bufferSize: bufferSize - concurrency,
    });
  }

  /** One item of a map(): a task whose signal is the map call's `ctx.signal`. */
  #submitMap(
    fn: AnyFn,
    item: unknown,
    index: number,
    priority: number,
    signal: AbortSignal,
    group: MapGroup,
  ): Promise<unknown> {
    if (this.#state !== OPEN) {
      return Promise.reject(new MapFailure(this.#closedError()));
    }
    if (signal.aborted) return Promise.reject(new MapFailure(signal.reason));
    if (index > group.failedAt) {
      return Promise.reject(
        new MapFailure(abortError("An earlier item failed")),
      );
    }
    const job = new Job(
      MAP,
      fn,
      undefined,
      item,
      priority,
      this.#seq++,
      index,
      signal,
    );
    const promise = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    job.group = group;
    // One listener per slot signal of the map's run (a slot has one call in
    // flight), not one per task: a listener costs more than the task.
    const current = group.current;
    if (!current.has(signal)) {
      signal.addEventListener("abort", () => {
        const running = current.get(signal);
        if (running !== undefined) this.#abortJob(running, signal.reason);
      }, { once: true });
    }
    current.set(signal, job);
    this.#add(job);
    return promise;
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
    if (this.#unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#waiters++;
    });
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
    if (this.pending < limit) return Promise.resolve();
    return new Promise((resolve) => {
      this.#sizeWaiters.push({ limit, resolve });
      this.#waiters++;
    });
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
    if (this.#state === OPEN) this.#paused = true;
  }

  /** Starts queued tasks again, as many as the free slots (and the rate limit) allow. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#dispatch();
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
    assertOptions("options", options);
    const { cancelPending = false } = options ?? {};
    assertBoolean("cancelPending", cancelPending);
    if (cancelPending) {
      this.#cancel(abortError("The pool was closed with cancelPending"));
    } else if (this.#state === OPEN) {
      this.#state = DRAINING;
      this.#paused = false;
      this.#dispatch();
    }
    this.#maybeFinish();
    if (this.#finished) return Promise.resolve();
    this.#closed ??= new Promise((resolve) => (this.#resolveClosed = resolve));
    return this.#closed;
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

  // ---- scheduling --------------------------------------------------------

  /** Takes a new task: starts it at once if a slot is free, else queues it. */
  #add(job: Job): void {
    this.#unsettled++;
    if (
      this.#queue.size === 0 && !this.#paused &&
      this.#active < this.#concurrency &&
      (this.#limiter === undefined || this.#limiter.tryAcquire())
    ) {
      this.#start(job);
    } else {
      this.#enqueue(job);
      this.#dispatch();
    }
  }

  #enqueue(job: Job): void {
    job.state = QUEUED;
    this.#queue.push(job);
  }

  /** A job left the queue (to start, or removed). */
  #dequeued(): void {
    if (this.#waiters !== 0) this.#check();
  }

  /** Starts a job in a new worker on a free slot (one must be free). */
  #start(job: Job): void {
    const slot = this.#freeSlots.length > 0
      ? this.#freeSlots.pop()!
      : this.#slotsMade++;
    this.#active++;
    void this.#worker(job, slot);
  }

  /** Starts queued jobs while slots are free. */
  #dispatch(): void {
    while (this.#active < this.#concurrency) {
      const job = this.#take();
      if (job === undefined) return;
      this.#dequeued();
      this.#start(job);
    }
  }

  /** The next job to start, if one may start now (a slot being free). */
  #take(): Job | undefined {
    if (this.#paused || this.#queue.size === 0) return undefined;
    if (this.#limiter !== undefined && !this.#limiter.tryAcquire()) {
      this.#waitForRate();
      return undefined;
    }
    return this.#queue.shift();
  }

  /**
   * Waits (once for the whole pool) until the rate limit allows a start, then
   * starts the first queued job. The start is recorded when granted; if
   * nothing may start then (paused, or the job was aborted), it is wasted
   * rather than recorded late, so the window is never exceeded.
   */
  #waitForRate(): void {
    if (this.#rateWait !== undefined) return;
    const wait = this.#rateWait = new AbortController();
    this.#limiter!.acquire(wait.signal).then(() => {
      this.#rateWait = undefined;
      if (
        !this.#paused && this.#queue.size > 0 &&
        this.#active < this.#concurrency
      ) {
        const job = this.#queue.shift()!;
        this.#dequeued();
        this.#start(job);
      }
      this.#dispatch();
    }, () => {
      // Closed, or the queue emptied (no timer is left behind).
      if (this.#rateWait === wait) this.#rateWait = undefined;
    });
  }

  /**
   * A worker: runs `job`, then the next queued job while there is one it may
   * start, keeping its slot; frees the slot when there is none. Never rejects.
   */
  async #worker(job: Job, slot: number): Promise<void> {
    let signal = this.#slots.get(slot);
    for (;;) {
      job.state = RUNNING;
      job.workerId = slot;
      if (signal.aborted) signal = this.#slots.renew(slot);
      if (job.group !== undefined && job.index > job.group.failedAt) {
        // An earlier item of its map failed: the map ends there.
        this.#settle(job, false, abortError("An earlier item failed"));
      } else if (
        this.#plain && (job.kind !== RUN || job.signal === undefined)
      ) {
        job.attempt = 1;
        try {
          const value = job.kind === SUBMIT
            ? await apply(job.fn, job.args!)
            : job.kind === MAP
            ? await job.fn(job.item, this.#ctx(job, signal))
            : await job.fn(this.#ctx(job, signal));
          this.#settle(job, true, value);
        } catch (error) {
          this.#settle(job, false, error);
        }
      } else {
        // Settled (or sent to back off) only now, in the same tick as the
        // slot is reused or freed: whoever awaits the task sees it free.
        const delay = await this.#attempt(job, signal);
        if (delay < 0) this.#settle(job, job.ok, job.value);
        else this.#backoff(job, delay);
      }
      const next = this.#take();
      if (next === undefined) {
        this.#active--;
        this.#freeSlots.push(slot);
        this.#maybeFinish();
        return;
      }
      job = next;
      this.#dequeued();
    }
  }

  /**
   * One attempt of a job on the slow path: with its own signal, a timeout or
   * retries. Resolves with `-1` when the job is done (its outcome in
   * `job.ok` and `job.value`), or with the delay before its retry.
   */
  async #attempt(job: Job, slot: AbortSignal): Promise<number> {
    job.attempt++;
    const timeoutMs = this.#timeoutMs;
    let signal = slot;
    let deadline: Deadline | undefined;
    if (
      timeoutMs !== undefined || (job.kind === RUN && job.signal !== undefined)
    ) {
      deadline = job.deadline = new Deadline(slot, timeoutMs, "Pool task");
      signal = deadline.signal;
      if (job.signal?.aborted) deadline.abort(job.signal.reason);
    }
    let ok = false;
    let value: unknown;
    try {
      value = job.kind === SUBMIT
        ? await apply(job.fn, job.args!)
        : job.kind === MAP
        ? await job.fn(job.item, this.#ctx(job, signal))
        : await job.fn(this.#ctx(job, signal));
      ok = true;
    } catch (error) {
      value = error;
    }
    if (deadline !== undefined) {
      job.deadline = undefined;
      if (deadline.end()) {
        ok = false;
        value = deadline.reason;
      }
    }
    job.ok = ok;
    job.value = value;
    if (ok || this.#state === CANCELLED || job.signal?.aborted) return -1;
    const delay = retryDelay(
      this.#retry,
      job.attempt,
      value,
      this.#ctx(job, signal),
    );
    if (delay === undefined) return -1;
    if (typeof delay === "number") return delay;
    job.value = delay.error; // retryIf (or the jitter's random()) threw
    return -1;
  }

  /**
   * Waits out a retry backoff holding no slot, then puts the job back into
   * the queue with its priority and original sequence number: ahead of the
   * equal-priority tasks that came after it.
   */
  #backoff(job: Job, delay: number): void {
    if (this.#state === CANCELLED || job.signal?.aborted) {
      return this.#settle(job, job.ok, job.value); // cancelled meanwhile
    }
    job.value = undefined;
    job.state = BACKOFF;
    this.#backingOff.add(job);
    job.timer = setTimeout(() => {
      job.timer = undefined;
      this.#backingOff.delete(job);
      this.#enqueue(job);
      this.#dispatch();
    }, delay);
  }

  #ctx(job: Job, signal: AbortSignal): TaskContext {
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

  /** Records a job's outcome and settles its promise. */
  #settle(job: Job, ok: boolean, value: unknown): void {
    job.state = DONE;
    if (job.onAbort !== undefined) {
      job.signal!.removeEventListener("abort", job.onAbort);
      job.onAbort = undefined;
    }
    this.#unsettled--;
    job.value = undefined;
    if (ok) job.resolve!(value);
    else if (job.kind !== MAP) job.reject!(value);
    else {
      const group = job.group!;
      if (job.index < group.failedAt) group.failedAt = job.index;
      job.reject!(new MapFailure(value));
    }
    if (this.#waiters !== 0) this.#check();
  }

  /**
   * Aborts one job: a waiting one is dropped and rejects with `reason`; a
   * running one sees its attempt's signal abort (if it has its own).
   */
  #abortJob(job: Job, reason: unknown): void {
    switch (job.state) {
      case QUEUED:
        this.#queue.remove(job);
        this.#dequeued();
        this.#settle(job, false, reason);
        if (this.#queue.size === 0 && this.#rateWait !== undefined) {
          this.#rateWait.abort();
          this.#rateWait = undefined;
        }
        break;
      case BACKOFF:
        clearTimeout(job.timer);
        job.timer = undefined;
        this.#backingOff.delete(job);
        this.#settle(job, false, reason);
        break;
      case RUNNING:
        if (job.deadline !== undefined) job.deadline.abort(reason);
        else if (job.kind === MAP) this.#slots.abortSlot(job.workerId, reason);
        return;
      default:
        return;
    }
    this.#maybeFinish();
  }

  /** close({ cancelPending: true }) and the pool's signal. */
  #cancel(reason: unknown): void {
    if (this.#state === CANCELLED) return;
    this.#state = CANCELLED;
    this.#paused = false;
    this.#slots.abort(reason); // and every attempt's own signal with them
    // One job at a time, each taken out of the backoff set or the queue just
    // before it settles, never from a snapshot: settling one can settle
    // others (a failed map job aborts its map's later jobs), which are then
    // no longer there to be settled a second time.
    for (const job of this.#backingOff) this.#abortJob(job, reason);
    for (let job; (job = this.#queue.peek()) !== undefined;) {
      this.#abortJob(job, reason);
    }
    this.#limiter?.close(reason);
    this.#maybeFinish();
  }

  #onSignal = (): void => this.#cancel(this.#signal!.reason);

  /** Resolves close() once closed and every task has settled. */
  #maybeFinish(): void {
    if (this.#finished || this.#state === OPEN || this.#unsettled !== 0) {
      return;
    }
    this.#finished = true;
    this.#limiter?.close(this.#closedError());
    this.#signal?.removeEventListener("abort", this.#onSignal);
    this.#resolveClosed?.();
  }

  /** Resolves the onIdle() and onSizeLessThan() waiters now due. */
  #check(): void {
    if (this.#unsettled === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      this.#waiters -= waiters.length;
      for (const resolve of waiters) resolve();
    }
    if (this.#sizeWaiters.length > 0) {
      const pending = this.pending;
      const keep: { limit: number; resolve: () => void }[] = [];
      for (const w of this.#sizeWaiters) {
        if (pending < w.limit) {
          this.#waiters--;
          w.resolve();
        } else keep.push(w);
      }
      this.#sizeWaiters = keep;
    }
  }

  #closedError(): TypeError {
    return new TypeError(
      `The pool is closed (${this.#active} running, ${this.pending} waiting): it takes no new task after close()`,
    );
  }
}
