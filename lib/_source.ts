// Reads any Source one item at a time. Synchronous sources answer synchronously
// so the scheduler can admit many items in one loop without a promise each.
import type { Source } from "./types.ts";

/** One pull: a result now (sync sources) or later (async sources). */
export type Pulled<T> = IteratorResult<T> | Promise<IteratorResult<T>>;

/** A source opened for reading. */
export interface SourceReader<T> {
  /** Reads the next item; never called again before the last pull settled. */
  pull(): Pulled<T>;
  /** Stops the source early: `return()` of an iterator, `cancel()` of a stream. */
  close(reason: unknown): Promise<void> | void;
  /** Whether `close()` also ends a pending pull (so it is safe to await). */
  readonly closeEndsPull: boolean;
  /** Whether `pull()` always answers synchronously (arrays, sync iterables). */
  readonly sync: boolean;
  /**
   * Sources in memory only: appends up to `max` items to `into` at once and
   * returns how many (0 at the end).
   */
  fill?(into: T[], max: number): number;
}

/** Whether `value` is something `openSource` can read. */
export function isSource(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  const v = value as Record<PropertyKey, unknown>;
  return typeof v.getReader === "function" ||
    typeof v[Symbol.asyncIterator] === "function" ||
    typeof v[Symbol.iterator] === "function";
}

class ArrayReader<T> implements SourceReader<T> {
  readonly closeEndsPull = true;
  readonly sync = true;
  #items: ArrayLike<T>;
  #i = 0;
  // One result object, rewritten per pull: the scheduler reads it at once.
  #result: { done: boolean; value: T | undefined } = {
    done: false,
    value: undefined,
  };
  constructor(items: ArrayLike<T>) {
    this.#items = items;
  }
  pull(): IteratorResult<T> {
    const i = this.#i;
    const result = this.#result;
    if (i >= this.#items.length) {
      result.done = true;
      result.value = undefined;
    } else {
      this.#i = i + 1;
      result.value = this.#items[i];
    }
    return result as IteratorResult<T>;
  }
  fill(into: T[], max: number): number {
    const items = this.#items;
    const start = this.#i;
    const end = Math.min(start + max, items.length);
    for (let i = start; i < end; i++) into.push(items[i]);
    if (end > start) this.#i = end;
    return end > start ? end - start : 0;
  }
  close(): void {
    this.#i = Infinity;
  }
}

class IteratorReader<T> implements SourceReader<T> {
  readonly closeEndsPull = false;
  readonly sync: boolean;
  #it: Iterator<T> | AsyncIterator<T>;
  constructor(it: Iterator<T> | AsyncIterator<T>, sync: boolean) {
    this.#it = it;
    this.sync = sync;
  }
  pull(): Pulled<T> {
    const r = this.#it.next();
    // An async iterator may answer with a thenable of another realm or
    // promise library: adopt it (a native promise is returned as it is).
    return this.sync ? r : Promise.resolve(r);
  }
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

class StreamReader<T> implements SourceReader<T> {
  readonly closeEndsPull = true;
  readonly sync = false;
  // getReader(), not async iteration: Safari cannot iterate streams.
  #reader: ReadableStreamDefaultReader<T>;
  constructor(stream: ReadableStream<T>) {
    this.#reader = stream.getReader();
  }
  pull(): Promise<IteratorResult<T>> {
    return this.#reader.read() as Promise<IteratorResult<T>>;
  }
  async close(reason: unknown): Promise<void> {
    await this.#reader.cancel(reason);
  }
}

/** Opens `source` for reading; call only after `isSource(source)` held. */
export function openSource<T>(source: Source<T>): SourceReader<T> {
  if (Array.isArray(source)) return new ArrayReader(source);
  const s = source as unknown as Record<PropertyKey, unknown>;
  if (typeof s.getReader === "function") {
    return new StreamReader(source as ReadableStream<T>);
  }
  if (typeof s[Symbol.asyncIterator] === "function") {
    return new IteratorReader(
      (source as AsyncIterable<T>)[Symbol.asyncIterator](),
      false,
    );
  }
  return new IteratorReader((source as Iterable<T>)[Symbol.iterator](), true);
}

/**
 * Closes a source not read to its end: `reader` (or, when the run stopped
 * before it opened one, a reader opened only to close it, so a stream is
 * cancelled and an iterator's `return()` runs). The cleanup is someone
 * else's code: started, not awaited (it may never finish, or wait behind a
 * pull that never settles), and its failure ignored (the run has its outcome
 * already).
 */
export function closeSource<T>(
  reader: SourceReader<T> | null,
  source: Source<T>,
  reason: unknown,
): void {
  if (reader === null) {
    try {
      reader = openSource(source);
    } catch {
      return; // nothing was opened, so there is nothing to close
    }
  }
  const opened = reader;
  Promise.resolve().then(() => opened.close(reason)).catch(() => {});
}
