// The engine behind `Batcher` (lib/batcher.ts), kept apart so the public class
// holds nothing but `#private` fields while the per-call objects
// (lib/_batcher_chunk.ts) can call back into it.
//
// Model. Accepted calls join the tail "chunk" (a forming batch) of a FIFO of
// chunks; a chunk holds at most `maxSize` items, and a new one is opened when
// the tail is full. Only the tail can still grow; every earlier chunk is
// closed. A chunk is sent when a worker slot is free and it is full, closed,
// due (`maxWaitMs` after its first item joined: a hard bound), or the batcher
// is closing. At most one flush timer exists: armed only while a slot is free
// and the head chunk is waiting for its deadline; cleared otherwise. Sends go
// through one microtask (`#pumpTask`), never from inside `process()`:
// `processBatch` never runs in a caller's stack, and a synchronous loop of
// calls is batched as a whole.
//
// `key`, `cache` and `minSize` send every call down the slow path (through
// the queue-bound test the short path makes anyway): a call with `key` or `cache` is handed to
// lib/_batcher_keys.ts, which queues one `Caller` per key; `minSize` holds a
// due tail chunk back in `#pump` until it has that many live items.
//
// Pending calls are what the heap holds, so their shape and the garbage
// collector decide most of the hot path's time. Each fast path below says why
// it exists and which benchmark shows it; how they were found, with every
// figure and what was tried and dropped: bench/README.md, "Batcher".

import type { BatcherStats } from "./batcher_options.ts";
import { Fifo } from "./_fifo.ts";
import { Histogram } from "./_histogram.ts";
import { QueueFullError } from "./errors.ts";
import { retryDelay } from "./_attempt.ts";
import type { RetryPolicy } from "./retry.ts";
import {
  BatcherKeys,
  type CacheStore,
  type KeysOwner,
} from "./_batcher_keys.ts";
import {
  backoff,
  Caller,
  Chunk,
  type CoreContext,
  Ctx,
  DONE,
  DROPPED,
  PRESIZE_MAX,
  QUEUED,
  rejecting,
  SENT,
  WAITING,
  wrongResults,
} from "./_batcher_chunk.ts";

/** The batch function as the core calls it. */
export type CoreFn<I> = (items: I[], ctx: CoreContext) => unknown;

/** Validated options. */
export interface CoreOptions {
  maxSize: number;
  maxWaitMs: number;
  concurrency: number;
  maxQueueSize: number;
  onFull: "wait" | "reject";
  retry: RetryPolicy | undefined;
  /** `1` for none. */
  minSize: number;
  key: ((item: unknown) => unknown) | undefined;
  cache: CacheStore<unknown, unknown> | undefined;
}

/**
 * Calls timed in full before sampling starts. batcher_bench: a clock read
 * costs about as much as queueing a call, so only a sample is timed.
 */
const TIMED_FIRST = 256;
/** After that, one call in SAMPLE_MASK + 1 is timed. */
const SAMPLE_MASK = 31;

/** The engine of a `Batcher`. */
export class BatcherCore<I, O> implements KeysOwner<I, O> {
  readonly #fn: CoreFn<I>;
  readonly #maxSize: number;
  /** The length a chunk's arrays are made at (see `PRESIZE_MAX`). */
  readonly #presize: number;
  readonly #maxWaitMs: number;
  readonly #concurrency: number;
  readonly #maxQueueSize: number;
  readonly #reject: boolean;
  readonly #retry: RetryPolicy | undefined;
  readonly #minSize: number;
  /** `key` and `cache`, when either is set. */
  readonly #keys: BatcherKeys<I, O> | undefined;
  /**
   * The queue bound as the short path of `process()` tests it: `0` when
   * `key`, `cache` or `minSize` is set, so that every call takes the slow
   * path at no cost to the short one (no new test there).
   */
  readonly #shortLimit: number;

  /** Chunks not sent yet, oldest first; the last one may be `#tail`. */
  readonly #chunks = new Fifo<Chunk<I, O>>();
  #tail: Chunk<I, O> | undefined = undefined;
  /** Live items in `#chunks`. */
  #pending = 0;
  /** Calls waiting for room (aborted ones are skipped when reached). */
  readonly #waiters = new Fifo<Caller<I, O>>();
  #waiting = 0;
  /** Batches holding a slot (running or backing off). */
  readonly #runs = new Set<Chunk<I, O>>();
  #inFlight = 0;
  readonly #freeIds: number[] = [];
  #nextId = 0;

  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = 0;
  #pumpScheduled = false;
  readonly #pumpTask = (): void => {
    this.#pumpScheduled = false;
    this.#pump(-1);
  };
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#pump(this.#timerAt);
  };

  #closed = false;
  #forced = false;
  #closing: Promise<void> | undefined = undefined;
  #settleClose: (() => void) | undefined = undefined;

  // Stats.
  #calls = 0;
  #batches = 0;
  #items = 0;
  #retries = 0;
  #succeeded = 0;
  #failed = 0;
  #cancelled = 0;
  readonly #queueWait = new Histogram();

  constructor(fn: CoreFn<I>, options: CoreOptions) {
    this.#fn = fn;
    this.#maxSize = options.maxSize;
    this.#presize = Math.min(options.maxSize, PRESIZE_MAX);
    this.#maxWaitMs = options.maxWaitMs;
    this.#concurrency = options.concurrency;
    this.#maxQueueSize = options.maxQueueSize;
    this.#reject = options.onFull === "reject";
    this.#retry = options.retry;
    this.#minSize = options.minSize;
    const { key, cache } = options;
    this.#keys = key !== undefined || cache !== undefined
      ? new BatcherKeys<I, O>(
        this,
        key,
        cache as CacheStore<unknown, O> | undefined,
      )
      : undefined;
    this.#shortLimit = this.#keys !== undefined || this.#minSize > 1
      ? 0
      : this.#maxQueueSize;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues `item`; see `Batcher.process`. */
  process(item: I, signal: AbortSignal | undefined): Promise<O> {
    if (
      signal !== undefined || this.#closed || this.#waiting > 0 ||
      this.#pending >= this.#shortLimit
    ) {
      return this.#processSlow(item, signal);
    }
    // The short path, with no helper call in the common case. W6
    // (bench/compare): the slow path inline here made `process()` about 2.5×
    // slower (the function was optimized less well).
    const n = ++this.#calls;
    const tail = this.#tail;
    const chunk = tail === undefined || tail.size >= this.#maxSize ||
        n <= TIMED_FIRST || (n & SAMPLE_MASK) === 0
      ? this.#join(n)
      : tail;
    const index = chunk.size++;
    chunk.items[index] = item;
    chunk.live++;
    this.#pending++;
    if (
      (index === 0 || index + 1 >= this.#maxSize) && !this.#pumpScheduled &&
      this.#runs.size < this.#concurrency
    ) {
      this.#schedulePump();
    }
    // A `{ resolve }` literal, not the bare function (see `Callback`); the
    // promise's `reject` dies at once: errors resolve with a `Rejection`.
    return new Promise<O>((resolve) => {
      chunk.callbacks[index] = { resolve };
    });
  }

  /**
   * The fast path's rare part: opens a chunk when the tail is missing or
   * full, and times the call when it is sampled. Returns the chunk to join.
   */
  #join(n: number): Chunk<I, O> {
    const calledAt = n <= TIMED_FIRST || (n & SAMPLE_MASK) === 0
      ? performance.now()
      : -1;
    const chunk = this.#tailChunk(calledAt);
    if (calledAt >= 0) (chunk.times ??= []).push(calledAt);
    return chunk;
  }

  /**
   * `process()` when closed, with a signal, with the queue full, or with
   * `key`, `cache` or `minSize`.
   */
  #processSlow(item: I, signal: AbortSignal | undefined): Promise<O> {
    if (this.#closed) {
      return Promise.reject(
        new TypeError(
          "Batcher.process() called after close(): the batcher accepts no more items",
        ),
      );
    }
    if (signal !== undefined && signal.aborted) {
      return Promise.reject(signal.reason);
    }
    if (this.#keys !== undefined) return this.#keys.process(item, signal);
    const refused = this.refuseFull();
    if (refused !== undefined) return refused;
    const caller = new Caller<I, O>(this, item, signal, this.callTime());
    const promise = new Promise<O>((resolve, reject) => {
      caller.resolve = resolve;
      caller.reject = reject;
    });
    this.queue(caller);
    signal?.addEventListener("abort", caller, { once: true });
    return promise;
  }

  countCall(): void {
    this.#calls++;
  }

  callTime(): number {
    const n = ++this.#calls;
    return n <= TIMED_FIRST || (n & SAMPLE_MASK) === 0 ? performance.now() : -1;
  }

  refuseFull(): Promise<never> | undefined {
    return this.#reject &&
        (this.#pending >= this.#maxQueueSize || this.#waiting > 0)
      ? Promise.reject(new QueueFullError(this.#maxQueueSize))
      : undefined;
  }

  queue(caller: Caller<I, O>): void {
    if (this.#pending >= this.#maxQueueSize || this.#waiting > 0) {
      caller.state = WAITING;
      this.#waiters.push(caller);
      this.#waiting++;
    } else {
      this.#enqueue(caller, false);
    }
  }

  /** See `Batcher.clear`, `clearAll` and `prime` (no-ops without keys). */
  get keys(): BatcherKeys<I, O> | undefined {
    return this.#keys;
  }

  /** Starts closing; see `Batcher.close`. */
  close(force: boolean): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = new Promise<void>((resolve) => {
        this.#settleClose = resolve;
      });
    }
    if (force && !this.#forced) this.#force();
    else this.#schedulePump(); // what is queued is due now
    this.#checkIdle();
    return this.#closing;
  }

  stats(): BatcherStats {
    return {
      calls: this.#calls,
      batchesSent: this.#batches,
      itemsProcessed: this.#items,
      meanBatchSize: this.#batches === 0 ? 0 : this.#items / this.#batches,
      retries: this.#retries,
      succeeded: this.#succeeded,
      failed: this.#failed,
      cancelled: this.#cancelled,
      pending: this.#pending,
      waiting: this.#waiting,
      inFlight: this.#inFlight,
      running: this.#runs.size,
      cacheHits: this.#keys?.cacheHits ?? 0,
      deduped: this.#keys?.deduped ?? 0,
      queueWait: this.#queueWait.snapshot(),
    };
  }

  /**
   * A caller's signal aborted (or every caller of a slot left): take its
   * item back, or drop its result.
   */
  abortCaller(caller: Caller<I, O>, reason: unknown): void {
    const state = caller.state;
    if (state === DONE) return;
    caller.state = DONE;
    this.#cancelled++;
    if (state === WAITING) {
      this.#waiting--;
      caller.reject(reason);
      this.#checkIdle();
      return;
    }
    const chunk = caller.chunk!;
    chunk.callbacks[caller.index] = DROPPED;
    (chunk.excluded ??= []).push(caller.index);
    if (state === QUEUED) {
      chunk.live--;
      this.#pending--;
      if (caller.calledAt >= 0) {
        chunk.times!.splice(chunk.times!.indexOf(caller.calledAt), 1);
      }
      // An emptied tail must not lend its old deadline to the next item.
      if (chunk.live === 0 && chunk === this.#tail) this.#tail = undefined;
      caller.reject(reason);
      this.#admit();
      this.#schedulePump();
      this.#checkIdle();
      return;
    }
    // SENT: the batch runs on for the others; this result is dropped.
    chunk.waiting--;
    this.#inFlight--;
    caller.reject(reason);
    if (chunk.waiting === 0) {
      chunk.abort(
        new DOMException(
          "Every caller of this batch aborted its process() call",
          "AbortError",
        ),
      );
    }
  }

  /**
   * The chunk a new item joins: the tail, or a new one when it is full.
   * `calledAt` is a clock reading taken just now (the joining call's), or -1.
   */
  #tailChunk(calledAt: number): Chunk<I, O> {
    let chunk = this.#tail;
    if (chunk === undefined || chunk.size >= this.#maxSize) {
      // The deadline needs the time only when there is a wait.
      const firstAt = calledAt >= 0 || this.#maxWaitMs === 0
        ? calledAt
        : performance.now();
      chunk = new Chunk<I, O>(firstAt, this.#presize);
      this.#chunks.push(chunk);
      this.#tail = chunk;
    }
    return chunk;
  }

  /** Counts an item that joined `chunk`; a pump is due if it may send. */
  #added(chunk: Chunk<I, O>): void {
    this.#pending++;
    // `live === minSize`: the first item (no `minSize`), or the one a due
    // batch waited for.
    if (
      (chunk.live === this.#minSize || chunk.size >= this.#maxSize) &&
      this.#runs.size < this.#concurrency
    ) {
      this.#schedulePump();
    }
  }

  /**
   * Adds a `Caller` to the tail chunk. A call that `waited` for room joins
   * now: a chunk it opens is timed from now, not from its `process()` call.
   */
  #enqueue(caller: Caller<I, O>, waited: boolean): void {
    const chunk = this.#tailChunk(waited ? -1 : caller.calledAt);
    caller.state = QUEUED;
    caller.chunk = chunk;
    const index = chunk.size++;
    caller.index = index;
    chunk.items[index] = caller.item;
    chunk.callbacks[index] = caller;
    chunk.live++;
    if (caller.calledAt >= 0) (chunk.times ??= []).push(caller.calledAt);
    (chunk.callers ??= []).push(caller);
    this.#added(chunk);
  }

  /** Moves waiting calls into the queue while there is room. */
  #admit(): void {
    while (this.#waiting > 0 && this.#pending < this.#maxQueueSize) {
      const caller = this.#waiters.shift()!;
      if (caller.state !== WAITING) continue; // aborted while waiting
      this.#waiting--;
      this.#enqueue(caller, true);
    }
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(this.#pumpTask);
  }

  /**
   * Sends every chunk that may go now; arms or clears the flush timer.
   * `firedAt` is the deadline of the timer that called it (else -1): timers
   * may fire a little early by `performance.now()`, and a chunk whose
   * deadline a timer was armed for is due when that timer fires.
   */
  #pump(firedAt: number): void {
    if (this.#forced) return;
    let now = -1;
    let deadline = -1;
    while (this.#runs.size < this.#concurrency) {
      const chunk = this.#chunks.shift();
      if (chunk === undefined) break;
      if (chunk.live === 0) continue; // every caller aborted
      if (chunk === this.#tail) {
        if (chunk.size < this.#maxSize && !this.#closed) {
          const due = chunk.firstAt + this.#maxWaitMs;
          if (this.#maxWaitMs > 0 && due > firedAt) {
            if (now < 0) now = performance.now();
            if (now < due) {
              this.#chunks.unshift(chunk);
              deadline = due;
              break;
            }
          }
          // Due but short of `minSize`: waits, with no timer, for the item
          // that makes `minSize` (`#added`), or `close()`.
          if (chunk.live < this.#minSize) {
            this.#chunks.unshift(chunk);
            break;
          }
        }
        this.#tail = undefined;
      }
      now = this.#send(chunk, now);
    }
    if (deadline < 0) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    } else if (this.#timer === undefined || this.#timerAt > deadline) {
      // A timer due earlier is kept: it re-checks and re-arms.
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timerAt = deadline;
      this.#timer = setTimeout(this.#onTimer, Math.max(0, deadline - now));
    }
  }

  /** Hands a chunk to a free slot; returns the clock reading if it took one. */
  #send(chunk: Chunk<I, O>, now: number): number {
    const size = chunk.live;
    this.#runs.add(chunk);
    chunk.workerId = this.#freeIds.length > 0
      ? this.#freeIds.pop()!
      : this.#nextId++;
    chunk.attempt = 1;
    chunk.waiting = size;
    this.#pending -= size;
    this.#inFlight += size;
    this.#batches++;
    this.#items += size;
    const times = chunk.times;
    if (times !== undefined) {
      if (now < 0) now = performance.now();
      for (let i = 0; i < times.length; i++) {
        this.#queueWait.record(now - times[i]);
      }
      chunk.times = undefined;
    }
    const callers = chunk.callers;
    if (callers !== undefined) {
      for (const caller of callers) {
        if (caller.state === QUEUED) caller.state = SENT;
      }
      this.#keys?.sent(callers);
    }
    chunk.trim();
    this.#prepare(chunk, false);
    this.#admit();
    void this.#run(chunk);
    return now;
  }

  /**
   * Sets the items of the next attempt: every position whose caller still
   * waits, in order. `processBatch` may change the array it is given (sort
   * it, drain it), so `chunk.items` itself is handed over only when no retry
   * can follow; a retry is made from `chunk.items` as they were.
   */
  #prepare(chunk: Chunk<I, O>, retry: boolean): void {
    const { items, excluded } = chunk;
    if (excluded === undefined) {
      chunk.sent = retry || this.#retry !== undefined ? items.slice() : items;
      return;
    }
    const skip = new Set(excluded);
    const sent: I[] = [];
    const map: number[] = [];
    for (let i = 0; i < items.length; i++) {
      if (skip.has(i)) continue;
      sent.push(items[i]);
      map.push(i);
    }
    chunk.sent = sent;
    chunk.map = map;
  }

  /** Runs a batch through its attempts and settles its callers. */
  async #run(chunk: Chunk<I, O>): Promise<void> {
    for (;;) {
      let results: unknown;
      let error: unknown;
      let threw = false;
      const ctx = new Ctx(chunk);
      // The batch's size as sent: processBatch may empty the array.
      const n = chunk.sent.length;
      try {
        results = await this.#fn(chunk.sent, ctx);
      } catch (e) {
        threw = true;
        error = e;
      }
      if (chunk.waiting === 0) break; // force close, or every caller aborted
      if (!threw) {
        this.#deliver(chunk, results, n);
        break;
      }
      const delay = this.#retryDelay(chunk, error, ctx);
      if (typeof delay !== "number") {
        this.#failAll(chunk, delay === undefined ? error : delay.error);
        break;
      }
      await backoff(chunk, delay);
      if (chunk.waiting === 0) break; // no retry attempt: not counted
      this.#retries++;
      this.#prepare(chunk, true); // callers that aborted meanwhile leave it
      chunk.attempt++;
    }
    this.#finish(chunk);
  }

  /**
   * The wait before the next attempt of a failed batch; `undefined` for no
   * retry, `{ error }` when `retryIf` (or the jitter source) threw.
   */
  #retryDelay(
    chunk: Chunk<I, O>,
    error: unknown,
    ctx: CoreContext,
  ): number | undefined | { error: unknown } {
    if (this.#forced) return undefined;
    return retryDelay(this.#retry, chunk.attempt, error, ctx);
  }

  /**
   * Settles each caller of a batch of `n` items from `processBatch`'s return
   * value.
   */
  #deliver(chunk: Chunk<I, O>, results: unknown, n: number): void {
    const wrong = wrongResults(results, n);
    if (wrong !== undefined) {
      this.#failAll(chunk, wrong);
      return;
    }
    const { callbacks, map } = chunk;
    let errors = 0;
    for (let k = 0; k < n; k++) {
      const callback = callbacks[map === undefined ? k : map[k]];
      if (callback === DROPPED) continue; // its caller aborted
      const value = (results as readonly unknown[])[k];
      if (value instanceof Error) {
        errors++;
        callback.resolve(rejecting(value));
      } else {
        callback.resolve(value as O);
      }
    }
    this.#failed += errors;
    this.#succeeded += chunk.waiting - errors;
    this.#settled(chunk);
  }

  /** Rejects every caller of a batch still waiting. */
  #failAll(chunk: Chunk<I, O>, error: unknown): void {
    this.#failed += chunk.waiting;
    this.#rejectChunk(chunk, error);
    this.#settled(chunk);
  }

  /** Rejects every call of a chunk whose caller has not gone. */
  #rejectChunk(chunk: Chunk<I, O>, error: unknown): void {
    const { callbacks, size } = chunk;
    const rejection = rejecting<O>(error);
    for (let i = 0; i < size; i++) callbacks[i].resolve(rejection); // DROPPED: no-op
  }

  /** Every caller of a running batch is settled. */
  #settled(chunk: Chunk<I, O>): void {
    const callers = chunk.callers;
    if (callers !== undefined) {
      for (const caller of callers) if (caller.state !== DONE) caller.done();
    }
    this.#inFlight -= chunk.waiting;
    chunk.waiting = 0;
  }

  /** A batch gave its slot back. */
  #finish(chunk: Chunk<I, O>): void {
    this.#runs.delete(chunk);
    this.#freeIds.push(chunk.workerId);
    // Nothing of the batch is kept alive by a ctx the user may hold.
    chunk.items = chunk.sent = [];
    chunk.callbacks = [];
    chunk.map = chunk.excluded = chunk.callers = undefined;
    this.#pump(-1);
    this.#checkIdle();
  }

  /** `close({ force: true })`: settles every caller at once. */
  #force(): void {
    this.#forced = true;
    const error = new DOMException(
      "The batcher was closed with { force: true }",
      "AbortError",
    );
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // Queued and waiting calls, in call order (waiters came after the queue).
    for (let chunk; (chunk = this.#chunks.shift()) !== undefined;) {
      this.#cancelled += chunk.live;
      this.#rejectChunk(chunk, error);
      this.#settled(chunk); // chunk.waiting is 0: only marks its callers
    }
    this.#tail = undefined;
    this.#pending = 0;
    this.#keys?.forget();
    for (let caller; (caller = this.#waiters.shift()) !== undefined;) {
      if (caller.state !== WAITING) continue;
      this.#cancelled++;
      caller.done();
      caller.reject(error);
    }
    this.#waiting = 0;
    for (const chunk of this.#runs) {
      this.#cancelled += chunk.waiting;
      this.#rejectChunk(chunk, error);
      this.#settled(chunk);
      chunk.abort(error);
    }
  }

  /** Settles `close()` once nothing is queued, waiting or running. */
  #checkIdle(): void {
    if (
      this.#settleClose !== undefined && this.#pending === 0 &&
      this.#waiting === 0 && this.#runs.size === 0
    ) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      const settle = this.#settleClose;
      this.#settleClose = undefined;
      settle();
    }
  }
}
