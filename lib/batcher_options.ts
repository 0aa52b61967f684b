// The public types of a Batcher: its options, what `processBatch` receives,
// the cache it takes and what `stats()` reports. Types only.
import type { LatencyStats } from "./stats.ts";
import type { RetryOptions } from "./retry.ts";

/**
 * The second argument of `processBatch`: one per attempt of a batch.
 *
 * @example Reading the context
 * ```ts
 * import { Batcher, type BatchContext } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const seen: BatchContext[] = [];
 * const batcher = new Batcher((xs: number[], ctx) => {
 *   seen.push(ctx);
 *   return xs;
 * }, { maxSize: 10 });
 * await batcher.process(1);
 * await batcher.close();
 * assert.equal(seen[0].attempt, 1);
 * assert.equal(seen[0].workerId, 0);
 * assert.equal(seen[0].signal.aborted, false);
 * ```
 */
export interface BatchContext {
  /**
   * Aborts when the batcher is closed with `{ force: true }`, and when every
   * caller of this batch has aborted its `process()` call (nobody wants the
   * results any more). Pass it on to `fetch` and friends.
   */
  readonly signal: AbortSignal;
  /** The attempt number, from `1` (above 1 only with `retry`). */
  readonly attempt: number;
  /**
   * The slot running the batch: `0` to `concurrency - 1`, the same for every
   * attempt of one batch.
   */
  readonly workerId: number;
}

/**
 * The batch function: takes the items of one batch and returns one result
 * per item, in order (an array of the same length), or a promise of it. An
 * `Error` instance in the array rejects that item's caller alone. The `items`
 * array is its own: sorting or draining it changes neither which result goes
 * to which caller nor what a retry receives.
 *
 * @typeParam I The item type.
 * @typeParam O The result type of one item.
 *
 * @example A batch function with a failing item
 * ```ts
 * import { Batcher, type ProcessBatch } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const lookup: ProcessBatch<string, number> = (keys) =>
 *   keys.map((k) => k === "" ? new Error("empty key") : k.length);
 * const batcher = new Batcher(lookup, { maxSize: 10 });
 * const [a, b] = await Promise.allSettled([batcher.process("abc"), batcher.process("")]);
 * assert.deepEqual(a, { status: "fulfilled", value: 3 });
 * assert.equal(b.status, "rejected");
 * await batcher.close();
 * ```
 */
export type ProcessBatch<I, O> = (
  items: I[],
  ctx: BatchContext,
) => readonly (O | Error)[] | Promise<readonly (O | Error)[]>;

/**
 * The `retry` option of a {@linkcode Batcher}: the stages' {@linkcode RetryOptions}
 * without `scope`, with `retryIf` receiving the batch's {@linkcode BatchContext}.
 *
 * @example Retrying a flaky backend
 * ```ts
 * import { Batcher, type BatcherRetryOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const retry: BatcherRetryOptions = { attempts: 3, delayMs: 1, retryIf: (e) => e instanceof TypeError };
 * const batcher = new Batcher((xs: number[]) => {
 *   if (++calls < 3) throw new TypeError("connection reset");
 *   return xs.map((x) => x * 2);
 * }, { maxSize: 10, retry });
 * assert.equal(await batcher.process(21), 42);
 * assert.equal(calls, 3);
 * await batcher.close();
 * ```
 */
export interface BatcherRetryOptions
  extends Omit<RetryOptions, "retryIf" | "scope"> {
  /**
   * Decides per error whether to try the batch again (`ctx.attempt` is the
   * attempt that failed). A force-closed batcher never retries. A `retryIf`
   * that throws counts as "no", and its error becomes the callers' error.
   * @default {() => true}
   */
  retryIf?: (error: unknown, ctx: BatchContext) => boolean;
}

/**
 * A `Map`-like store of results for the `cache` option of a
 * {@linkcode Batcher}: a `Map`, an LRU cache, or your own. A `get` that
 * returns `undefined` is a miss. No time-to-live is built in: give a store
 * whose `get` expires entries.
 *
 * @typeParam K The key type (`key(item)`, or the item without `key`).
 * @typeParam O The result type of one item.
 *
 * @example A cache whose entries expire (a time-to-live)
 * ```ts
 * import { Batcher, type BatcherCache } from "sluice";
 * import assert from "node:assert/strict";
 *
 * class TtlCache<K, V> implements BatcherCache<K, V> {
 *   readonly #map = new Map<K, { value: V; until: number }>();
 *   constructor(readonly ttlMs: number) {}
 *   get(key: K): V | undefined {
 *     const entry = this.#map.get(key);
 *     if (entry !== undefined && entry.until <= Date.now()) this.#map.delete(key);
 *     return entry !== undefined && entry.until > Date.now() ? entry.value : undefined;
 *   }
 *   set(key: K, value: V): void {
 *     this.#map.set(key, { value, until: Date.now() + this.ttlMs });
 *   }
 *   delete(key: K): boolean { return this.#map.delete(key); }
 *   clear(): void { this.#map.clear(); }
 * }
 *
 * let loads = 0;
 * const users = new Batcher((ids: number[]) => {
 *   loads++;
 *   return ids.map((id) => `user ${id}`);
 * }, { maxSize: 100, cache: new TtlCache<number, string>(60_000) });
 * assert.equal(await users.process(1), "user 1");
 * assert.equal(await users.process(1), "user 1"); // from the cache
 * assert.equal(loads, 1);
 * await users.close();
 * ```
 */
export interface BatcherCache<K, O> {
  /** The cached result of `key`, or `undefined` (a miss). */
  get(key: K): O | undefined;
  /** Stores the result of a succeeded item, or a primed one. */
  set(key: K, value: O): unknown;
  /** Forgets `key` (`batcher.clear(key)`). */
  delete(key: K): unknown;
  /** Forgets everything (`batcher.clearAll()`). */
  clear(): unknown;
}

/**
 * Options of a {@linkcode Batcher}.
 *
 * @typeParam I The item type (for `key`).
 * @typeParam O The result type of one item (for `cache`).
 * @typeParam K The key type (for `key` and `cache`).
 *
 * @example Options for an embedding model
 * ```ts
 * import { Batcher, type BatcherOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const options: BatcherOptions = { maxSize: 64, maxWaitMs: 10, concurrency: 2, maxQueueSize: 1000 };
 * const batcher = new Batcher((texts: string[]) => texts.map((t) => t.length), options);
 * assert.equal(await batcher.process("hello"), 5);
 * await batcher.close();
 * ```
 */
export interface BatcherOptions<I = never, O = never, K = unknown> {
  /** A batch is sent the moment it holds this many items. Required. */
  maxSize: number;
  /**
   * A due batch (`maxWaitMs` passed since its first item) waits until it
   * holds this many items, then is sent at once; there is no flush timer
   * meanwhile. With `maxWaitMs: 0` (the default) a batch is due at once, so
   * it is sent the moment it holds `minSize` items, however long that takes.
   * `close()` sends whatever is queued, however small. At most `maxSize`.
   * @default {1}
   */
  minSize?: number;
  /**
   * The key of an item: calls whose items have the same key (compared as
   * `Map` keys are: objects by identity) while one of them waits to be sent
   * share one item of the batch (the first caller's) and its result; each
   * caller's promise settles with it. Once the batch is sent, a new call
   * with that key makes a new item (with `cache`, it joins the one in
   * flight). A caller that aborts leaves alone; the shared item leaves the
   * batch (or its result is dropped) only when every one of its callers has
   * aborted, so a caller without a signal keeps it. Without `key`, every call
   * is its own item (with `cache`, the item itself is the key). A `key` that
   * throws rejects that call with its error.
   * @default {undefined}
   */
  key?(item: I): K;
  /**
   * Memoizes results by key (`key(item)`, or the item itself): `true` for a
   * new `Map`, or a {@linkcode BatcherCache} of your own. A cached result
   * resolves the call at once, without a batch; an item's result is cached
   * when its batch succeeds (an `Error` result, a failed batch, an abort or
   * `undefined` is not); a call whose key is in a batch not yet settled joins
   * that item (DataLoader's dedupe). `clear(key)`, `clearAll()` and
   * `prime(key, value)` manage it. No time-to-live is built in: give a store
   * whose `get` expires entries (see {@linkcode BatcherCache}).
   * @default {false}
   */
  cache?: boolean | BatcherCache<K, O>;
  /**
   * The longest a partial batch waits for more items, counted from its first
   * item (a hard bound: later items do not extend it). `0` sends a partial
   * batch right after the current synchronous code (in a microtask), so it
   * holds every call made in the same turn. When every slot is busy, a due
   * batch starts as soon as one frees.
   * @default {0}
   */
  maxWaitMs?: number;
  /**
   * Batches running at once (`processBatch` calls in flight, a batch backing
   * off before a retry included). `Infinity` for no limit.
   * @default {1}
   */
  concurrency?: number;
  /**
   * Items accepted and not yet sent in a batch, at most. Beyond it, `onFull`
   * decides. `Infinity` for no limit.
   * @default {Infinity}
   */
  maxQueueSize?: number;
  /**
   * When the queue is full: `"wait"` makes `process()` wait for room (first
   * come, first served; its `signal` can abort the wait); `"reject"` rejects
   * it at once with a {@linkcode QueueFullError}.
   * @default {"wait"}
   */
  onFull?: "wait" | "reject";
  /**
   * Retries of a batch whose `processBatch` threw (or rejected), with
   * exponential backoff between attempts; the batch keeps its slot while it
   * backs off. Per-item `Error` results and wrong-length results are final.
   * @default {undefined}
   */
  retry?: BatcherRetryOptions;
}

/**
 * Options of {@linkcode Batcher.prototype.process}.
 *
 * @example Aborting a call
 * ```ts
 * import { Batcher, type BatcherProcessOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const batcher = new Batcher((xs: number[]) => xs, { maxSize: 10, maxWaitMs: 1000 });
 * const controller = new AbortController();
 * const options: BatcherProcessOptions = { signal: controller.signal };
 * const p = batcher.process(1, options);
 * controller.abort(new Error("no longer needed"));
 * await assert.rejects(p, { message: "no longer needed" });
 * await batcher.close();
 * ```
 */
export interface BatcherProcessOptions {
  /**
   * Aborts this call: its item leaves the queue if not yet sent; if it was
   * sent, the batch's result for it is dropped. Either way the promise
   * rejects at once with `signal.reason`, and the other callers are not
   * affected.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Batcher.prototype.close}.
 *
 * @example Closing with force
 * ```ts
 * import { Batcher, type BatcherCloseOptions } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const batcher = new Batcher((xs: number[]) => xs, { maxSize: 10, maxWaitMs: 1000 });
 * const p = batcher.process(1);
 * const options: BatcherCloseOptions = { force: true };
 * await batcher.close(options);
 * await assert.rejects(p, { name: "AbortError" });
 * ```
 */
export interface BatcherCloseOptions {
  /**
   * `false`: send what is queued at once (without waiting for `maxWaitMs`)
   * and settle when every batch has returned. `true`: reject every pending
   * caller at once with a `DOMException` named `AbortError`, abort the
   * running batches' `ctx.signal`, and settle when their `processBatch`
   * calls have returned.
   * @default {false}
   */
  force?: boolean;
}

/**
 * The figures of a {@linkcode Batcher}, from {@linkcode Batcher.prototype.stats}.
 * At every moment `calls === succeeded + failed + cancelled + pending +
 * waiting + inFlight`.
 *
 * @example Reading the figures
 * ```ts
 * import { Batcher, type BatcherStats } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const batcher = new Batcher((xs: number[]) => xs, { maxSize: 4 });
 * await Promise.all([1, 2, 3, 4, 5, 6].map((x) => batcher.process(x)));
 * const stats: BatcherStats = batcher.stats();
 * assert.equal(stats.batchesSent, 2);
 * assert.equal(stats.itemsProcessed, 6);
 * assert.equal(stats.meanBatchSize, 3);
 * assert.equal(stats.queueWait.count, 6);
 * await batcher.close();
 * ```
 */
export interface BatcherStats {
  /**
   * `process()` calls accepted (refused ones are not counted). With `key` or
   * `cache`, the other counts are of items (one item per key in a batch),
   * so `calls === succeeded + failed + cancelled + pending + waiting +
   * inFlight + deduped + cacheHits`.
   */
  readonly calls: number;
  /** Batches handed to `processBatch` (a retry is not a new batch). */
  readonly batchesSent: number;
  /** Items in those batches, each counted once. */
  readonly itemsProcessed: number;
  /** `itemsProcessed / batchesSent` (0 before the first batch). */
  readonly meanBatchSize: number;
  /**
   * Attempts that were retries (`processBatch` calls after a batch's first;
   * a backoff ended by aborts or a force close adds none).
   */
  readonly retries: number;
  /** Calls resolved with a result. */
  readonly succeeded: number;
  /** Calls rejected by their batch: an `Error` result, a throw, a wrong length. */
  readonly failed: number;
  /** Calls aborted by their caller's signal or by `close({ force: true })`. */
  readonly cancelled: number;
  /** Items accepted and not yet sent in a batch. */
  readonly pending: number;
  /** Calls waiting for room in the queue (`onFull: "wait"`). */
  readonly waiting: number;
  /** Items in running batches whose caller still waits. */
  readonly inFlight: number;
  /** Batches holding a slot (running, or backing off before a retry). */
  readonly running: number;
  /** Calls answered from the `cache`, without a batch. */
  readonly cacheHits: number;
  /**
   * Calls that joined another call's item with the same key (`key`, or the
   * in-flight dedupe of `cache`) instead of adding one.
   */
  readonly deduped: number;
  /**
   * Time from `process()` to the send of its batch, in milliseconds (a wait
   * for room included); p50/p95 within about 2 %. Every call among the first
   * 256 is timed, then one in 32 (`count` says how many).
   */
  readonly queueWait: LatencyStats;
}
