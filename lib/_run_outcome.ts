/**
 * How a run's end reaches its consumers: `next()` calls waiting for a
 * result, `collect()`'s callback, and `settled()`. The run's error is
 * delivered once: to the first `next()` that waits for it or comes after, or
 * to `collect()`.
 *
 * @module
 */

import { DONE_RESULT } from "./_run.ts";

/** A `next()` waiting for a result. */
interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(reason: unknown): void;
}

/** What `collect()` is told once the run has settled. */
export type OnCollected = (failed: boolean, reason: unknown) => void;

/** The consumers of one run, waiting for results or for its end. */
export class RunOutcome {
  /** Why the run stopped (once it has). */
  reason: unknown = undefined;
  /** It stopped quietly (the consumer left): no error to deliver. */
  quiet = false;
  #waiters: Waiter[] = [];
  #onCollected: OnCollected | null = null;
  #onSettled: (() => void)[] = [];
  #settled = false;
  /** Settled after a stop (not at the end of the input). */
  #stopped = false;
  #undelivered = false;

  /** Some `next()` waits for a result. */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /** A `next()` that found no result: waits for one, or for the end. */
  wait(): Promise<IteratorResult<unknown>> {
    if (this.#settled) {
      if (!this.#undelivered) return Promise.resolve(DONE_RESULT);
      this.#undelivered = false;
      return Promise.reject(this.reason);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /** The longest-waiting `next()` gets `value`. */
  resolveNext(value: unknown): void {
    this.#waiters.shift()!.resolve({ done: false, value });
  }

  /** `collect()`: `cb` runs once the run has settled (now, if it has). */
  onCollected(cb: OnCollected): void {
    if (!this.#settled) {
      this.#onCollected = cb;
      return;
    }
    this.#undelivered = false;
    cb(this.#stopped, this.reason);
  }

  /** Resolves once the run has settled. */
  whenSettled(): Promise<void> {
    if (this.#settled) return Promise.resolve();
    return new Promise((resolve) => this.#onSettled.push(resolve));
  }

  /**
   * The run has settled (`failed`: after a stop). `complete` runs first
   * when `collect()` waits and the run was not stopped (it closes an output
   * placed directly).
   */
  settle(failed: boolean, complete: () => void): void {
    this.#settled = true;
    this.#stopped = failed;
    this.#undelivered = failed && !this.quiet;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (this.#undelivered) {
        this.#undelivered = false;
        w.reject(this.reason);
      } else w.resolve(DONE_RESULT);
    }
    const onCollected = this.#onCollected;
    this.#onCollected = null;
    if (onCollected !== null) {
      // A stopped run rejects collect() even when stopped quietly (disposed):
      // its results are incomplete.
      if (!failed) complete();
      this.#undelivered = false;
      onCollected(failed, this.reason);
    }
    const callbacks = this.#onSettled;
    this.#onSettled = [];
    for (const cb of callbacks) cb();
  }
}
