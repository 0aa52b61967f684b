// Helpers of the flow, pipeline and error tests. Every timer started here is
// cleared or awaited, so the leak sanitizers stay quiet.

import { sleep } from "./_helpers.ts";

export { type Deferred, deferred, sleep, until } from "./_helpers.ts";

/** Lets pending microtasks and a few rounds of timers run. */
export async function ticks(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await sleep(0);
}

/**
 * Races `promise` against a timer; the timer is cleared either way. Turns a
 * would-be hang into a failure.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  message: string,
  ms = 5000,
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

/** Whether `promise` has settled by now (after draining microtasks). */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await ticks(1);
  return settled;
}

/** Integers `0..n-1`. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
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
