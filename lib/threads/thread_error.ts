/**
 * The error of a call whose thread died under it: an uncaught error in the
 * thread, `self.close()` or `process.exit()` in a task, running out of
 * memory. The pool replaced the thread; `retry` and `onError` treat this like
 * any failure. `cause` holds the thread's error when there was one.
 *
 * @example
 * ```ts
 * import { ThreadError } from "sluice/threads";
 * import assert from "node:assert/strict";
 *
 * const error = new ThreadError('Task "hash": the thread exited with code 1');
 * assert.equal(error.name, "ThreadError");
 * ```
 */
export class ThreadError extends Error {
  /**
   * Makes the error of a call whose thread died.
   *
   * @param message What happened to the thread.
   * @param options `cause`: the thread's error, if any.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ThreadError";
  }
}
