// The one helper module of the Deno unit tests (tests/cross has its own, bundled
// for every runtime). Every timer started here is cleared or awaited, so the
// leak sanitizers stay quiet.

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
 * Resolves (never rejects) when `signal` aborts: a call that stays in flight
 * until its `ctx.signal` aborts, then returns normally.
 */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
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

/** Lets pending microtasks and `rounds` rounds of timers run. */
export async function ticks(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await sleep(0);
}

/** Whether `promise` has settled by now (after draining microtasks). */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await ticks(1);
  return settled;
}

/**
 * The reason `promise` rejects with; throws when it resolves instead. Attaches
 * its handler at once, so a later rejection is never reported as unhandled.
 */
export function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(
        `expected a rejection, got a value: ${JSON.stringify(value)}`,
      );
    },
    (reason) => reason,
  );
}

/** Every value of `iterable`, in order. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
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

/** Integers `0..n-1` (`n` of them). */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Integers `from..to`, both included. */
export function rangeInclusive(from: number, to: number): number[] {
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

/** What an instrumented source has seen. */
export interface SourceProbe {
  /** `[Symbol.iterator]()` / `[Symbol.asyncIterator]()` / `getReader()` calls. */
  opened: number;
  /** Items handed out. */
  pulled: number;
  /** Whether the source's `finally` / `return()` / `cancel()` ran. */
  closed: boolean;
  /** The reason given to `cancel()` (streams only). */
  cancelReason: unknown;
}

function probe(): SourceProbe {
  return { opened: 0, pulled: 0, closed: false, cancelReason: undefined };
}

/**
 * A synchronous generator source over `0..n-1` (endless by default) that counts
 * its pulls and records whether its `finally` ran.
 */
export function syncSource(
  n = Infinity,
): { source: Iterable<number>; probe: SourceProbe } {
  const p = probe();
  const source = {
    [Symbol.iterator]() {
      p.opened++;
      return (function* () {
        try {
          for (let i = 0; i < n; i++) {
            p.pulled++;
            yield i;
          }
        } finally {
          p.closed = true;
        }
      })();
    },
  };
  return { source, probe: p };
}

/**
 * An async generator source over `0..n-1` (endless by default) that counts its
 * pulls and records whether its `finally` ran. With `delayMs`, each item
 * waits that long before it is yielded.
 */
export function asyncSource(
  n = Infinity,
  delayMs = 0,
): { source: AsyncIterable<number>; probe: SourceProbe } {
  const p = probe();
  const source = {
    [Symbol.asyncIterator]() {
      p.opened++;
      return (async function* () {
        try {
          for (let i = 0; i < n; i++) {
            if (delayMs > 0) await sleep(delayMs);
            p.pulled++;
            yield i;
          }
        } finally {
          p.closed = true;
        }
      })();
    },
  };
  return { source, probe: p };
}

/**
 * A `ReadableStream` over `0..n-1` (endless by default) with no queue of its
 * own (`highWaterMark: 0`), so `pulled` counts exactly the reads made.
 * `closed` records that `cancel()` ran, with `cancelReason`.
 */
export function streamSource(
  n = Infinity,
): { source: ReadableStream<number>; probe: SourceProbe } {
  const p = probe();
  let i = 0;
  const source = new ReadableStream<number>({
    pull(controller) {
      if (i >= n) return controller.close();
      p.pulled++;
      controller.enqueue(i++);
    },
    cancel(reason) {
      p.closed = true;
      p.cancelReason = reason;
    },
  }, { highWaterMark: 0 });
  return { source, probe: p };
}

/**
 * An `AbortSignal` whose `"abort"` listeners are tracked: `active` is the
 * number added and not removed (listeners that ran with `once` count as
 * removed), `added` the number ever added.
 */
export function trackedSignal(): {
  controller: AbortController;
  listeners: { readonly active: number; readonly added: number };
} {
  const controller = new AbortController();
  const signal = controller.signal;
  const live = new Set<unknown>();
  let added = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ) => {
    if (type === "abort" && !live.has(listener)) {
      added++;
      live.add(listener);
      if (typeof options === "object" && options.once) {
        // A `once` listener is gone after it ran: wrap nothing, just forget it
        // when the signal aborts (after the listener itself ran).
        add(type, () => live.delete(listener), { once: true });
      }
    }
    add(type, listener, options);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ) => {
    if (type === "abort") live.delete(listener);
    remove(type, listener, options);
  }) as typeof signal.removeEventListener;
  return {
    controller,
    listeners: {
      get active() {
        return live.size;
      },
      get added() {
        return added;
      },
    },
  };
}

// ---------------------------------------------------------------------------
// Fake time (JSR's @std/testing/time is not reachable here)

// Captured at load, so FakeTime never replaces them: it hands a timer id it
// does not know to the real clear, and flushes promise chains with a real
// macrotask (setImmediate: ~0.05 ms, where setTimeout(0) takes ~2 ms).
const realClearTimeout = globalThis.clearTimeout;
const realSetImmediate = setImmediate;

interface FakeTimer {
  id: number;
  /** Virtual `performance.now()` at which it fires. */
  at: number;
  /** Creation order: ties in `at` fire in it. */
  seq: number;
  /** Repeat period (intervals only). */
  every?: number;
  fn: (...args: unknown[]) => void;
  args: unknown[];
}

/**
 * A virtual clock: `using time = new FakeTime()` replaces `setTimeout`,
 * `clearTimeout`, `setInterval`, `clearInterval`, `performance.now()` and
 * `Date.now()` until the end of the scope (also when the test throws). The
 * clock starts at the real `performance.now()` (rounded up to a whole ms) and
 * `Date.now()`, and moves only in `tickAsync`, `nextAsync` and `runAllAsync`,
 * which fire due timers in time order (ties in creation order; intervals
 * repeat) and let every promise chain run once before the first timer and
 * after each one (one real macrotask). Timers left at dispose are dropped.
 *
 * While it is installed, `sleep()` waits on the virtual clock, so `tick()`,
 * `ticks()`, `isSettled()`, `until()` and `withTimeout()` do too: use
 * `await time.tickAsync(0)` to let pending work run.
 */
export class FakeTime implements Disposable {
  readonly #timers = new Map<number, FakeTimer>();
  readonly #restore: (() => void)[] = [];
  // A whole number, so that sums of whole delays stay exact.
  #now = Math.ceil(performance.now());
  readonly #dateOffset = Date.now() - this.#now;
  // Far from the runtime's own ids, so an unknown id goes to the real clear.
  #nextId = 1 << 30;
  #seq = 0;
  #created = 0;
  #peak = 0;

  constructor() {
    const clear = (id?: unknown) => {
      if (!this.#timers.delete(id as number)) realClearTimeout(id as number);
    };
    this.#replace(globalThis, "setTimeout", this.#add(false));
    this.#replace(globalThis, "setInterval", this.#add(true));
    this.#replace(globalThis, "clearTimeout", clear);
    this.#replace(globalThis, "clearInterval", clear);
    this.#replace(performance, "now", () => this.#now);
    this.#replace(Date, "now", () => Math.floor(this.#now + this.#dateOffset));
  }

  /** The virtual `performance.now()`. */
  get now(): number {
    return this.#now;
  }

  /** Timers set and not yet fired or cleared (an interval counts once). */
  get pending(): number {
    return this.#timers.size;
  }

  /** Timers set so far (`setTimeout` and `setInterval` calls). */
  get created(): number {
    return this.#created;
  }

  /** The most timers pending at once so far. */
  get peakPending(): number {
    return this.#peak;
  }

  /** Advances the clock by `ms`, firing every timer due by then. */
  async tickAsync(ms = 0): Promise<void> {
    const target = this.#now + ms;
    await flush();
    while (await this.#fireNext(target));
    this.#now = Math.max(this.#now, target);
  }

  /** Advances to the next timer and fires it; `false` when there is none. */
  nextAsync(): Promise<boolean> {
    return flush().then(() => this.#fireNext(Infinity));
  }

  /** Fires timers until none is left (throws after `limit`: an endless interval). */
  async runAllAsync(limit = 10_000): Promise<void> {
    for (let n = 0; await this.nextAsync(); n++) {
      if (n >= limit) throw new Error(`FakeTime: still timers after ${limit}`);
    }
  }

  [Symbol.dispose](): void {
    this.#timers.clear();
    for (const restore of this.#restore.splice(0).reverse()) restore();
  }

  async #fireNext(target: number): Promise<boolean> {
    let next: FakeTimer | undefined;
    for (const t of this.#timers.values()) {
      if (
        t.at <= target &&
        (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))
      ) next = t;
    }
    if (next === undefined) return false;
    this.#now = Math.max(this.#now, next.at);
    if (next.every === undefined) this.#timers.delete(next.id);
    else {
      next.at += next.every;
      next.seq = this.#seq++;
    }
    next.fn(...next.args);
    await flush();
    return true;
  }

  #add(repeat: boolean) {
    return (handler: unknown, ms?: unknown, ...args: unknown[]): number => {
      if (typeof handler !== "function") {
        throw new TypeError("FakeTime: a timer handler must be a function");
      }
      const delay = Math.max(0, Number(ms) || 0);
      const id = this.#nextId++;
      this.#timers.set(id, {
        id,
        at: this.#now + delay,
        seq: this.#seq++,
        every: repeat ? Math.max(1, delay) : undefined,
        fn: handler as FakeTimer["fn"],
        args,
      });
      this.#created++;
      this.#peak = Math.max(this.#peak, this.#timers.size);
      return id;
    };
  }

  #replace(target: object, key: string, value: unknown): void {
    const own = Object.getOwnPropertyDescriptor(target, key);
    Object.defineProperty(target, key, {
      value,
      configurable: true,
      writable: true,
    });
    this.#restore.push(() => {
      if (own) Object.defineProperty(target, key, own);
      else delete (target as Record<string, unknown>)[key];
    });
  }
}

/** Lets every promise chain run: one real macrotask. */
function flush(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

/**
 * An AbortController whose signal counts its listeners: added minus removed
 * (to check that a listener added for a call is removed when it ends).
 */
export function countedSignal(): {
  controller: AbortController;
  listeners(): number;
} {
  const controller = new AbortController();
  const signal = controller.signal;
  let count = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    count++;
    add(...args);
  }) as typeof add;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    count--;
    remove(...args);
  }) as typeof remove;
  return { controller, listeners: () => count };
}
