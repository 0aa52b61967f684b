import { BatcherCore } from "./_batcher_core.ts";
import { readCache } from "./_batcher_keys.ts";
import {
  assertBoolean,
  assertDuration,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
} from "./_validate.ts";
import { readRetry, type RetryOptions } from "./retry.ts";
import type {
  BatcherCloseOptions,
  BatcherOptions,
  BatcherProcessOptions,
  BatcherStats,
  ProcessBatch,
} from "./batcher_options.ts";

/**
 * Request coalescing: callers hand in single items with
 * {@linkcode Batcher.prototype.process}, a batch function receives them in
 * arrays, and each caller gets its own item's result.
 *
 * Batching: items are batched in call order. A batch is sent the moment it
 * holds `maxSize` items, or `maxWaitMs` after its first item joined (a hard
 * bound, not reset by later items). At most `concurrency` batches run at
 * once; while every slot is busy, items keep queueing and go out in the next
 * batches, a due batch starting as soon as a slot frees. At most one flush
 * timer exists at a time, and none once the batcher is idle or closed.
 *
 * Results: `processBatch` returns one result per item, in order. An `Error`
 * instance rejects that item's caller alone; a result of the wrong length (or
 * not an array) rejects every caller of the batch with an error naming both
 * lengths; a throw or rejection rejects every caller of the batch with that
 * error, after the `retry` attempts if any.
 *
 * Backpressure: `maxQueueSize` bounds the items not yet sent; beyond it,
 * `process()` waits for room (`onFull: "wait"`) or rejects with a
 * {@linkcode QueueFullError} (`onFull: "reject"`).
 *
 * Cancellation: a caller's `signal` removes its item if not yet sent, or
 * drops the batch's result for it if sent; its promise rejects at once with
 * `signal.reason`, and no other caller is affected. Every promise a batcher
 * returns settles, whatever happens.
 *
 * Keys and caching (DataLoader's): with `key`, calls with the same key
 * share one item while it waits to be sent; with `cache`, results are
 * memoized by key and calls for a key in flight join it. `minSize` makes a
 * due batch wait for more items.
 *
 * Closing: {@linkcode Batcher.prototype.close} drains, `close({ force: true })`
 * rejects the pending callers at once; `process()` after `close()` rejects.
 * `await using` closes (drains) at the end of the scope.
 *
 * @typeParam I The item type.
 * @typeParam O The result type of one item.
 * @typeParam K The key type of `key` and `cache` (the item type without `key`).
 *
 * @example The async-batcher README case: 10 items, batches of 5, 2 at once
 * ```ts
 * import { Batcher } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const batches: number[][] = [];
 * await using batcher = new Batcher(async (xs: number[]) => {
 *   batches.push(xs);
 *   await new Promise((r) => setTimeout(r, 10));
 *   return xs.map((x) => x * 2);
 * }, { maxSize: 5, maxWaitMs: 2000, concurrency: 2 });
 * const results = await Promise.all(
 *   [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => batcher.process(x)),
 * );
 * assert.deepEqual(results, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
 * assert.deepEqual(batches, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
 * ```
 *
 * @example DataLoader-style loading: one item per key, results cached
 * ```ts
 * import { Batcher } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const batches: number[][] = [];
 * const users = new Batcher((ids: number[]) => {
 *   batches.push(ids);
 *   return ids.map((id) => ({ id, name: `user ${id}` }));
 * }, { maxSize: 100, cache: true });
 * const [a, b, c] = await Promise.all([users.process(1), users.process(2), users.process(1)]);
 * assert.equal(a, c); // one item, one result
 * assert.deepEqual(b, { id: 2, name: "user 2" });
 * assert.equal(await users.process(2), b); // from the cache: no batch
 * assert.deepEqual(batches, [[1, 2]]);
 * assert.deepEqual([users.stats().deduped, users.stats().cacheHits], [1, 1]);
 * await users.close();
 * ```
 */
export class Batcher<I, O, K = I> {
  readonly #core: BatcherCore<I, O>;

  /**
   * Makes a batcher. Nothing runs until the first `process()` call.
   *
   * @param processBatch Called with the items of each batch and a
   * {@linkcode BatchContext}; returns one result per item, in order.
   * @param options `maxSize` (required), `maxWaitMs`, `minSize`,
   * `concurrency`, `maxQueueSize`, `onFull`, `retry`, `key`, `cache`.
   * @throws {TypeError} When `processBatch` is not a function or an option
   * has the wrong type (`key` not a function, `cache` neither a boolean nor
   * an object with `get`, `set`, `delete` and `clear`).
   * @throws {RangeError} When a number is out of range (`maxSize: 0`,
   * `maxWaitMs: -1`, `concurrency: NaN`, `minSize` above `maxSize`, …).
   *
   * @example Bad options throw at once
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const fn = (xs: number[]) => xs;
   * assert.throws(() => new Batcher(fn, { maxSize: -1 }), {
   *   name: "RangeError",
   *   message: "'maxSize' must be a positive integer: current value is -1",
   * });
   * assert.throws(() => new Batcher(fn, { maxSize: 5, maxWaitMs: NaN }), RangeError);
   * ```
   */
  constructor(
    processBatch: ProcessBatch<I, O>,
    options: BatcherOptions<NoInfer<I>, NoInfer<O>, K>,
  ) {
    assertFunction("processBatch", processBatch);
    if (options === undefined) {
      throw new TypeError(
        "'options' must be an object with 'maxSize': current value is undefined",
      );
    }
    assertOptions("options", options, "new Batcher()", [
      "maxSize",
      "maxWaitMs",
      "concurrency",
      "maxQueueSize",
      "onFull",
      "retry",
      "minSize",
      "key",
      "cache",
    ]);
    const {
      maxSize,
      maxWaitMs = 0,
      concurrency = 1,
      maxQueueSize = Infinity,
      onFull = "wait",
      retry,
      minSize = 1,
      key,
      cache = false,
    } = options;
    assertInteger("maxSize", maxSize, 1);
    assertInteger("minSize", minSize, 1);
    if (minSize > maxSize) {
      throw new RangeError(
        `'minSize' must be <= 'maxSize' (${maxSize}): current value is ${minSize}`,
      );
    }
    assertDuration("maxWaitMs", maxWaitMs);
    assertInteger("concurrency", concurrency, 1, true);
    assertInteger("maxQueueSize", maxQueueSize, 1, true);
    assertOneOf("onFull", onFull, ["wait", "reject"] as const);
    this.#core = new BatcherCore<I, O>(processBatch, {
      maxSize,
      maxWaitMs,
      concurrency,
      maxQueueSize,
      onFull,
      retry: readRetry(retry as RetryOptions | undefined),
      minSize,
      key: key === undefined
        ? undefined
        : (assertFunction("key", key), key as (item: unknown) => unknown),
      cache: readCache(cache),
    });
  }

  /**
   * Queues `item` for the next batch.
   *
   * @param item The item.
   * @param options `signal`: aborts this call alone.
   * @returns A promise of this item's result. It rejects with the item's
   * `Error` result, the batch's error, `signal.reason` on abort, a
   * `DOMException` named `AbortError` on `close({ force: true })`, a
   * {@linkcode QueueFullError} with `onFull: "reject"`, or a `TypeError`
   * after `close()` or for a bad `options` argument.
   *
   * @example One result per caller
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const sizes: number[] = [];
   * const batcher = new Batcher(async (ids: number[]) => {
   *   sizes.push(ids.length);
   *   return ids.map((id) => ({ id, name: `user ${id}` }));
   * }, { maxSize: 100, maxWaitMs: 5 });
   * const [a, b] = await Promise.all([batcher.process(1), batcher.process(2)]);
   * assert.deepEqual(a, { id: 1, name: "user 1" });
   * assert.deepEqual(b, { id: 2, name: "user 2" });
   * assert.deepEqual(sizes, [2]);
   * await batcher.close();
   * ```
   */
  process(item: I, options?: BatcherProcessOptions): Promise<O> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      // Reported through the promise, like every failure of process().
      try {
        assertOptions("options", options, "batcher.process()", ["signal"]);
        signal = options.signal;
        assertSignal(signal);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#core.process(item, signal);
  }

  /**
   * Closes the batcher: later `process()` calls reject. Without `force`, what
   * is queued is sent at once (no waiting for `maxWaitMs`) and the promise
   * settles when every caller is settled and every batch has returned. With
   * `force: true`, every pending caller rejects at once, running batches'
   * `ctx.signal` aborts, and the promise settles when their `processBatch`
   * calls have returned. Calling it again returns the same settlement;
   * `force: true` after a plain `close()` escalates.
   *
   * @param options `force`.
   * @returns A promise that resolves when the batcher is idle. It rejects
   * with a `TypeError`, and the batcher stays open, when `options` is not an
   * object or `force` is not a boolean.
   *
   * @example Draining
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const batcher = new Batcher((xs: number[]) => xs.map((x) => x + 1), { maxSize: 10, maxWaitMs: 60_000 });
   * const p = batcher.process(1);
   * await batcher.close(); // sends the partial batch now
   * assert.equal(await p, 2);
   * await assert.rejects(batcher.process(2), TypeError);
   * ```
   */
  close(options?: BatcherCloseOptions): Promise<void> {
    let force: boolean;
    try {
      assertOptions("options", options, "batcher.close()", ["force"]);
      force = options?.force === undefined ? false : options.force;
      assertBoolean("force", force);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#core.close(force);
  }

  /**
   * Forgets the cached result of `key`; a batch already sent for it no longer
   * answers later calls nor fills the cache (DataLoader's `clear`). Without
   * `cache`, does nothing.
   *
   * @param key A key, as `key(item)` returns it (the item without `key`).
   * @returns The batcher, for chaining.
   *
   * @example Loading again after a change
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const names = new Map([[1, "Ada"]]);
   * const users = new Batcher((ids: number[]) => ids.map((id) => names.get(id) ?? new Error(`no user ${id}`)), {
   *   maxSize: 100,
   *   cache: true,
   * });
   * assert.equal(await users.process(1), "Ada");
   * names.set(1, "Ada Lovelace");
   * assert.equal(await users.process(1), "Ada"); // cached
   * users.clear(1);
   * assert.equal(await users.process(1), "Ada Lovelace");
   * await users.close();
   * ```
   */
  clear(key: K): this {
    this.#core.keys?.clear(key);
    return this;
  }

  /**
   * Forgets every cached result, and every batch in flight for later calls
   * (DataLoader's `clearAll`). Without `cache`, does nothing.
   *
   * @returns The batcher, for chaining.
   *
   * @example Starting afresh
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * let batches = 0;
   * const double = new Batcher((xs: number[]) => (batches++, xs.map((x) => 2 * x)), { maxSize: 10, cache: true });
   * await Promise.all([double.process(1), double.process(2)]);
   * double.clearAll();
   * await Promise.all([double.process(1), double.process(2)]);
   * assert.equal(batches, 2);
   * await double.close();
   * ```
   */
  clearAll(): this {
    this.#core.keys?.clearAll();
    return this;
  }

  /**
   * Caches `value` as the result of `key` unless a result is cached already
   * (to replace one, `clear(key)` first), as DataLoader's `prime`: later
   * calls with that key resolve with it without a batch.
   *
   * @param key A key, as `key(item)` returns it (the item without `key`).
   * @param value The result to cache.
   * @returns The batcher, for chaining.
   * @throws {TypeError} Without the `cache` option, or when `value` is
   * `undefined` or an `Error` (neither is ever cached).
   *
   * @example Priming with what a list query returned
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const loaded: number[] = [];
   * const users = new Batcher((ids: number[]) => {
   *   loaded.push(...ids);
   *   return ids.map((id) => ({ id }));
   * }, { maxSize: 100, cache: true });
   * for (const user of [{ id: 1 }, { id: 2 }]) users.prime(user.id, user);
   * assert.deepEqual(await users.process(2), { id: 2 });
   * assert.deepEqual(await users.process(3), { id: 3 });
   * assert.deepEqual(loaded, [3]);
   * await users.close();
   * ```
   */
  prime(key: K, value: O): this {
    const keys = this.#core.keys;
    if (keys === undefined) {
      throw new TypeError(
        "Batcher.prime() needs the 'cache' option: this batcher has no cache",
      );
    }
    keys.prime(key, value);
    return this;
  }

  /**
   * Whether {@linkcode Batcher.prototype.close} was called.
   *
   * @returns `true` once closing has started.
   *
   * @example Before and after close()
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const batcher = new Batcher((xs: number[]) => xs, { maxSize: 10 });
   * assert.equal(batcher.closed, false);
   * await batcher.close();
   * assert.equal(batcher.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * The figures so far: batches sent, items processed, mean batch size,
   * retries, outcomes, what is pending, waiting and running, and the queue
   * wait (p50, p95).
   *
   * @returns A fresh snapshot.
   *
   * @example Mean batch size
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const batcher = new Batcher((xs: number[]) => xs, { maxSize: 5 });
   * await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.process(i)));
   * const { batchesSent, meanBatchSize, pending, running } = batcher.stats();
   * assert.deepEqual([batchesSent, meanBatchSize, pending, running], [2, 5, 0, 0]);
   * await batcher.close();
   * ```
   */
  stats(): BatcherStats {
    return this.#core.stats();
  }

  /**
   * Closes without force (drains): for `await using`.
   *
   * @returns The promise of {@linkcode Batcher.prototype.close}.
   *
   * @example Scoped batcher
   * ```ts
   * import { Batcher } from "sluice";
   * import assert from "node:assert/strict";
   *
   * let p: Promise<number>;
   * {
   *   await using batcher = new Batcher((xs: number[]) => xs, { maxSize: 10, maxWaitMs: 60_000 });
   *   p = batcher.process(7);
   * }
   * assert.equal(await p, 7);
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
