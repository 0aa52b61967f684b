// The `key` and `cache` options of a `Batcher` (lib/batcher.ts): calls that
// share a key share one item (a `Slot`) of a batch and its result, and a cache
// answers calls without a batch. The engine (lib/_batcher_core.ts) hands a
// call here only when one of these options is set, so a plain batcher never
// runs this code.
//
// A slot is a `Caller` without a signal of its own: its callers each hold
// its promise (a caller without a signal) or one derived from it (a caller
// with a signal, which can leave alone). The slot leaves its batch, like an
// aborted call, only when the last of its callers has left.

import {
  Caller,
  type CallerOwner,
  DONE,
  isRejection,
} from "./_batcher_chunk.ts";
import { show } from "./_validate.ts";

/**
 * A `Map`-like store of results (see `BatcherCache` in lib/batcher.ts): a
 * `get` that returns `undefined` is a miss.
 */
export interface CacheStore<K, O> {
  get(key: K): O | undefined;
  set(key: K, value: O): unknown;
  delete(key: K): unknown;
  clear(): unknown;
}

/** What the keys need of the engine. */
export interface KeysOwner<I, O> extends CallerOwner<I, O> {
  /** Counts a call that makes no item (a cache hit, a call joining a slot). */
  countCall(): void;
  /** Counts a call that makes an item; returns its sampled time, or -1. */
  callTime(): number;
  /** A `QueueFullError` rejection when a new item is refused, else `undefined`. */
  refuseFull(): Promise<never> | undefined;
  /** Queues a new item's caller (or makes it wait for room). */
  queue(caller: Caller<I, O>): void;
}

/** The shared item of the calls with one key. */
export class Slot<I, O> extends Caller<I, O> {
  readonly key: unknown;
  /** Its callers still waiting (one without a signal never leaves). */
  callers = 0;
  promise!: Promise<O>;

  constructor(core: CallerOwner<I, O>, item: I, key: unknown, at: number) {
    super(core, item, undefined, at);
    this.key = key;
  }
}

/** The `key` and `cache` of one batcher, and their counters. */
export class BatcherKeys<I, O> {
  readonly #core: KeysOwner<I, O>;
  readonly #key: ((item: I) => unknown) | undefined;
  readonly #cache: CacheStore<unknown, O> | undefined;
  /**
   * Slots that a new call with their key joins: not yet sent; with a cache,
   * until settled (the in-flight dedupe).
   */
  readonly #slots = new Map<unknown, Slot<I, O>>();
  cacheHits = 0;
  deduped = 0;

  constructor(
    core: KeysOwner<I, O>,
    key: ((item: I) => unknown) | undefined,
    cache: CacheStore<unknown, O> | undefined,
  ) {
    this.#core = core;
    this.#key = key;
    this.#cache = cache;
  }

  /** `process()` on an open batcher, with a signal that has not aborted. */
  process(item: I, signal: AbortSignal | undefined): Promise<O> {
    let key: unknown;
    let cached: O | undefined;
    try {
      key = this.#key === undefined ? item : this.#key(item);
      cached = this.#cache?.get(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const core = this.#core;
    if (cached !== undefined) {
      core.countCall();
      this.cacheHits++;
      return Promise.resolve(cached);
    }
    let slot = this.#slots.get(key);
    if (slot !== undefined) {
      core.countCall();
      this.deduped++;
    } else {
      const refused = core.refuseFull();
      if (refused !== undefined) return refused;
      slot = this.#newSlot(item, key);
      core.queue(slot);
    }
    return this.#join(slot, signal);
  }

  #newSlot(item: I, key: unknown): Slot<I, O> {
    const slot = new Slot<I, O>(this.#core, item, key, this.#core.callTime());
    slot.promise = new Promise<O>((resolve, reject) => {
      slot.resolve = (value) => resolve(this.#result(slot, value));
      slot.reject = reject;
    });
    this.#slots.set(key, slot);
    return slot;
  }

  /** A caller joins `slot`: its promise, or one that its signal can leave. */
  #join(slot: Slot<I, O>, signal: AbortSignal | undefined): Promise<O> {
    slot.callers++;
    if (signal === undefined) return slot.promise;
    return new Promise<O>((resolve, reject) => {
      const leave = (): void => {
        reject(signal.reason);
        this.#leave(slot, signal.reason);
      };
      signal.addEventListener("abort", leave, { once: true });
      slot.promise.then((value) => {
        signal.removeEventListener("abort", leave);
        resolve(value);
      }, (error) => {
        signal.removeEventListener("abort", leave);
        reject(error);
      });
    });
  }

  /** A caller of `slot` aborted: the last one takes the item back. */
  #leave(slot: Slot<I, O>, reason: unknown): void {
    if (slot.state === DONE || --slot.callers > 0) return;
    this.#unlist(slot);
    this.#core.abortCaller(slot, reason);
  }

  /**
   * The result of `slot` on its way to its callers: cached when it is one
   * (not a failure, not `undefined`) and the slot is still listed (not
   * cleared meanwhile). A `set` that throws fails the slot's callers.
   */
  #result(slot: Slot<I, O>, value: O | PromiseLike<O>): O | PromiseLike<O> {
    if (this.#slots.get(slot.key) !== slot) return value;
    this.#slots.delete(slot.key);
    const cache = this.#cache;
    if (cache !== undefined && value !== undefined && !isRejection(value)) {
      try {
        cache.set(slot.key, value as O);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return value;
  }

  #unlist(slot: Slot<I, O>): void {
    if (this.#slots.get(slot.key) === slot) this.#slots.delete(slot.key);
  }

  /**
   * The batch of these callers was sent: without a cache, a later call with
   * their key makes a new item (sharing is within a forming batch only).
   */
  sent(callers: readonly Caller<I, O>[]): void {
    if (this.#cache !== undefined) return;
    for (const caller of callers) this.#unlist(caller as Slot<I, O>);
  }

  /** Forgets every slot (the batcher was force-closed). */
  forget(): void {
    this.#slots.clear();
  }

  /** See `Batcher.clear`. */
  clear(key: unknown): void {
    if (this.#cache === undefined) return;
    this.#cache.delete(key);
    this.#slots.delete(key);
  }

  /** See `Batcher.clearAll`. */
  clearAll(): void {
    if (this.#cache === undefined) return;
    this.#cache.clear();
    this.#slots.clear();
  }

  /** See `Batcher.prime`. */
  prime(key: unknown, value: O): void {
    const cache = this.#cache;
    if (cache === undefined) {
      throw new TypeError(
        "Batcher.prime() needs the 'cache' option: this batcher has no cache",
      );
    }
    if (value === undefined || value instanceof Error) {
      throw new TypeError(
        `Batcher.prime() takes a result to cache: current value is ${
          value === undefined ? "undefined" : "an Error"
        } (failed and undefined results are not cached)`,
      );
    }
    if (cache.get(key) === undefined) cache.set(key, value);
  }
}

/** The `cache` option as the core takes it: a store, or `undefined`. */
export function readCache(
  cache: unknown,
): CacheStore<unknown, unknown> | undefined {
  if (cache === false) return undefined;
  if (cache === true) return new Map();
  const store = cache as Partial<CacheStore<unknown, unknown>> | null;
  if (
    typeof store !== "object" || store === null ||
    typeof store.get !== "function" || typeof store.set !== "function" ||
    typeof store.delete !== "function" || typeof store.clear !== "function"
  ) {
    throw new TypeError(
      `'cache' must be a boolean or a Map-like object with get, set, delete and clear: current value is ${
        show(cache)
      }`,
    );
  }
  return store as CacheStore<unknown, unknown>;
}
