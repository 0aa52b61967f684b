/**
 * What a `ThreadPool` asks of where its calls run: a `Spawner` makes
 * `Thread`s (Web Workers, `worker_threads`, or child processes), which
 * report back through `ThreadEvents`. Shared by `_thread.ts` and
 * `_process.ts`, with `importBuiltin`.
 *
 * @module
 */

/** What a thread reports to its pool. */
export interface ThreadEvents {
  /** A message from the thread. */
  message(thread: Thread, data: unknown): void;
  /** The thread ended on its own (crashed, exited, closed itself). */
  died(thread: Thread, reason: string, error?: unknown): void;
}

/** How threads are made where the pool runs. */
export interface Spawner {
  spawn(events: ThreadEvents): Thread;
  /** Releases what the spawner holds; resolves once its threads are gone. */
  close(): void | Promise<void>;
}

/** One running thread. */
export interface Thread {
  /** Sends a call (moving `transfer`'s objects). */
  post(message: unknown, transfer: Transferable[]): void;
  /** Ends it at once, busy or not. */
  terminate(): void;
  /** Whether it may keep the process alive (Node only; idle threads don't). */
  ref(on: boolean): void;
}

/**
 * Imports a Node built-in at run time. The specifier is not a literal, so a
 * bundler for browsers leaves it alone instead of failing to resolve it.
 */
export function importBuiltin(name: string): Promise<unknown> {
  const specifier = `node:${name}`;
  return import(/* @vite-ignore */ specifier);
}
