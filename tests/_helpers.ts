// Shared helpers of the stage tests. Every timer here is cleared or awaited,
// so the leak sanitizers stay quiet.

/** Resolves after `ms` milliseconds (early, without error, when `signal` aborts). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A promise with its `resolve` and `reject` at hand. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  /** Whether `resolve` or `reject` was called. */
  readonly settled: boolean;
}

/** Makes a {@linkcode Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = (v) => {
      settled = true;
      res(v);
    };
    reject = (r) => {
      settled = true;
      rej(r);
    };
  });
  return {
    promise,
    resolve,
    reject,
    get settled() {
      return settled;
    },
  };
}

/** Settles (rejects) only when `signal` aborts, with its reason. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
}

/**
 * Races `promise` against a timer that rejects with `message` after `ms`; the
 * timer is cleared either way. Turns a would-be hang into a failure.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${message}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every millisecond; throws after `ms` (a hang guard). */
export async function until(
  condition: () => boolean,
  message: string,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${message}`);
    }
    await sleep(1);
  }
}

/** Lets every pending microtask and one round of timers run. */
export function tick(): Promise<void> {
  return sleep(0);
}

/**
 * A seeded PRNG (mulberry32): the same seed gives the same sequence, so a
 * failing "random" test can be replayed.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integers `from..to` inclusive. */
export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

/**
 * Gates keyed by anything: `wait(key)` blocks until `open(key)`, in either
 * order. `started` lists the keys in the order their waits began.
 */
export class Gates<K = number> {
  readonly #gates = new Map<K, Deferred<void>>();
  readonly started: K[] = [];

  #get(key: K): Deferred<void> {
    let d = this.#gates.get(key);
    if (d === undefined) {
      d = deferred();
      this.#gates.set(key, d);
    }
    return d;
  }

  /** Blocks until `open(key)` (at once if it was opened already). */
  wait(key: K): Promise<void> {
    this.started.push(key);
    return this.#get(key).promise;
  }

  /** Lets the waiter of `key` (present or future) through. */
  open(key: K): void {
    this.#get(key).resolve();
  }

  /** Opens every gate waited on or opened so far. */
  openAll(): void {
    for (const key of this.started) this.open(key);
  }
}

/**
 * Counts calls in flight: `enter()` at the start of a call, `leave()` at its
 * end; `peak` is the most seen at once.
 */
export class Gauge {
  current = 0;
  peak = 0;
  enter(): void {
    this.current++;
    if (this.current > this.peak) this.peak = this.current;
  }
  leave(): void {
    this.current--;
  }
}

/** A synchronous iterable over `items` that counts how often it was pulled. */
export class CountingSource<T> implements Iterable<T> {
  /** `next()` calls that returned an item. */
  pulls = 0;
  /** Whether `return()` ran (the consumer stopped early). */
  returned = false;
  readonly #items: readonly T[];

  constructor(items: readonly T[]) {
    this.#items = items;
  }

  [Symbol.iterator](): Iterator<T> {
    let i = 0;
    return {
      next: () => {
        if (i >= this.#items.length) return { done: true, value: undefined };
        this.pulls++;
        return { done: false, value: this.#items[i++] };
      },
      return: () => {
        this.returned = true;
        return { done: true, value: undefined };
      },
    };
  }
}

/**
 * A `ReadableStream` that yields `items` and then stays open (never closes
 * by itself): a source that is still "going" when a run is cancelled.
 */
export function openStream<T>(items: readonly T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item);
    },
  }, { highWaterMark: 0 });
}
