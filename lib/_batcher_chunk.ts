// What a `Batcher` call and batch are made of (the engine, lib/_batcher_core.ts,
// moves them around): a chunk of positions, each settled through its
// callback, and the `Caller` of a call that needs more than a callback.
//
// How these shapes were found, with the figures: bench/README.md, "Batcher".

import { show } from "./_validate.ts";

/** What `processBatch` receives besides the items (see `BatchContext`). */
export interface CoreContext {
  readonly signal: AbortSignal;
  readonly attempt: number;
  readonly workerId: number;
}

// Caller states.
/** In a chunk, not sent. */
export const QUEUED = 0;
/** Waiting for room (`onFull: "wait"`). */
export const WAITING = 1;
/** In a running batch, result awaited. */
export const SENT = 2;
/** Settled. */
export const DONE = 3;

/**
 * Chunk arrays are made at `maxSize` slots, up to this many. W6
 * (bench/compare): filling presized arrays by index beats pushing, which
 * regrows each array 4 times on the way to 100.
 */
export const PRESIZE_MAX = 1024;

type Reject = (reason: unknown) => void;

/**
 * How a call is settled: its promise's `resolve`, given the result or a
 * `Rejection`. A plain call keeps a `{ resolve }` literal, not the bare
 * function: W6 on Deno (bench/compare) scavenges half as often, since V8
 * pretenures the literal's allocation site.
 */
export interface Callback<O> {
  resolve(value: O | PromiseLike<O>): void;
}

/**
 * A thenable that rejects: resolving a promise with it rejects that promise
 * with `error` (so a chunk needs to keep only each call's `resolve`).
 */
class Rejection {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
  then(_: unknown, reject: Reject): void {
    reject(this.error);
  }
}

/** Whether `value` is a `Rejection` (a failed result on its way to a caller). */
export function isRejection(value: unknown): boolean {
  return value instanceof Rejection;
}

/** A `Rejection` typed as what a call's `resolve` takes. */
export function rejecting<O>(error: unknown): PromiseLike<O> {
  return new Rejection(error) as unknown as PromiseLike<O>;
}

/** The callback of a position whose caller has gone (aborted). */
export const DROPPED: Callback<unknown> = /* @__PURE__ */ Object.freeze({
  resolve(): void {},
});

/** What a `Caller` reports its abort to (the engine). */
export interface CallerOwner<I, O> {
  abortCaller(caller: Caller<I, O>, reason: unknown): void;
}

/**
 * A call with a signal, or one that waited for room: its own callback entry
 * and its own abort listener (itself, by `handleEvent`: no closure per
 * listener).
 */
export class Caller<I, O> implements Callback<O> {
  state = QUEUED;
  chunk: Chunk<I, O> | undefined = undefined;
  /** Position in `chunk.items`. */
  index = -1;
  resolve!: (value: O | PromiseLike<O>) => void;
  reject!: Reject;
  readonly core: CallerOwner<I, O>;
  readonly item: I;
  readonly signal: AbortSignal | undefined;
  /** `performance.now()` at the call when sampled, else -1. */
  readonly calledAt: number;

  constructor(
    core: CallerOwner<I, O>,
    item: I,
    signal: AbortSignal | undefined,
    calledAt: number,
  ) {
    this.core = core;
    this.item = item;
    this.signal = signal;
    this.calledAt = calledAt;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.core.abortCaller(this, this.signal!.reason);
  }

  /** Marks it settled (by its callback) and stops listening. */
  done(): void {
    this.state = DONE;
    this.signal?.removeEventListener("abort", this);
  }
}

/**
 * A forming batch, then (once sent) a running one. An aborted call's
 * position is excluded from the batch (`DROPPED` callback); its place is not
 * reused.
 */
export class Chunk<I, O> {
  /**
   * Every item that joined, by position (aborted ones included): the first
   * `size` slots of an array made at its final length (`PRESIZE_MAX`).
   */
  items: I[];
  /** Positions taken so far. */
  size = 0;
  /** Positions whose caller still waits. */
  live = 0;
  /** Positions given up by aborted callers; `undefined` while none. */
  excluded: number[] | undefined = undefined;
  /** The items of the current attempt, and their positions if some are excluded. */
  sent: I[] = [];
  map: number[] | undefined = undefined;
  /** How each position is settled (`DROPPED` once its caller is gone). */
  callbacks: Callback<O>[];
  /** Its `Caller`s, with their positions. */
  callers: Caller<I, O>[] | undefined = undefined;
  /** Sampled call times of its items. */
  times: number[] | undefined = undefined;
  /** `performance.now()` when its first item joined (0 when not needed). */
  readonly firstAt: number;
  // Running state.
  attempt = 0;
  workerId = -1;
  /** Callers of the running batch still waiting for their result. */
  waiting = 0;
  /** Made on the first read of `ctx.signal` (most batch functions never read it). */
  controller: AbortController | undefined = undefined;
  /** Set once the batch's signal must be aborted (force close, orphaned). */
  aborted = false;
  abortReason: unknown = undefined;
  /** Ends a retry backoff early. */
  wake: (() => void) | undefined = undefined;

  constructor(firstAt: number, presize: number) {
    this.firstAt = firstAt;
    this.items = new Array(presize);
    this.callbacks = new Array(presize);
  }

  /** Cuts the arrays to the positions taken, before the chunk is sent. */
  trim(): void {
    if (this.items.length !== this.size) {
      this.items.length = this.callbacks.length = this.size;
    }
  }

  signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.wake?.();
  }
}

/** The `ctx` of one attempt of a batch. */
export class Ctx<I, O> implements CoreContext {
  readonly attempt: number;
  readonly workerId: number;
  readonly #chunk: Chunk<I, O>;

  constructor(chunk: Chunk<I, O>) {
    this.attempt = chunk.attempt;
    this.workerId = chunk.workerId;
    this.#chunk = chunk;
  }

  get signal(): AbortSignal {
    return this.#chunk.signal();
  }
}

/** Waits out a retry backoff of `chunk`, holding its slot; ends early on abort. */
export function backoff<I, O>(chunk: Chunk<I, O>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      chunk.wake = undefined;
      resolve();
    }
    chunk.wake = done;
  });
}

/** `1 item`, `2 items`: a count and a noun for a message. */
function plural(n: number, noun: string): string {
  return n === 1 ? `1 ${noun}` : `${n} ${noun}s`;
}

/**
 * What is wrong with `processBatch`'s return value for a batch of `n` items
 * (every caller of the batch rejects with it): not an array, or the wrong
 * length; `undefined` when it is one result per item.
 */
export function wrongResults(results: unknown, n: number): Error | undefined {
  if (!Array.isArray(results)) {
    return new TypeError(
      `processBatch must return an array with one result per item: it returned ${
        show(results)
      } for a batch of ${plural(n, "item")}`,
    );
  }
  if (results.length !== n) {
    return new RangeError(
      `processBatch returned ${
        plural(results.length, "result")
      } for a batch of ${
        plural(n, "item")
      }: it must return one result per item, in order`,
    );
  }
  return undefined;
}
