/**
 * The pieces of one attempt, shared by the scheduler's stages, the `Pool` and
 * the `Batcher`: the per-attempt deadline, the retry decision and the worker
 * slots' signals. Each caller keeps its own slot semantics (a stage frees its
 * slot during a backoff, the Batcher keeps it, the Pool re-queues the task);
 * this module only decides and measures.
 *
 * @module
 */

import { TimeoutError } from "./errors.ts";
import { backoffDelay, type RetryPolicy } from "./retry.ts";

/**
 * A per-attempt signal: it aborts with a {@linkcode TimeoutError} `ms` after
 * the attempt started (none when `ms` is undefined), when its parent aborts
 * (with the parent's reason), or on {@linkcode Deadline.abort}. One listener
 * on the parent, removed by {@linkcode Deadline.end}.
 */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal;
  readonly #what: string;
  readonly #ms: number;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timedOut = false;

  /**
   * @param parent Aborting it aborts the attempt (a worker slot's signal).
   * @param ms The deadline, or undefined for none (a signal to abort only).
   * @param what Who timed out, in the message: `${what} timed out after ${ms} ms`.
   */
  constructor(parent: AbortSignal, ms: number | undefined, what: string) {
    this.#parent = parent;
    this.#what = what;
    this.#ms = ms ?? 0;
    if (parent.aborted) this.#controller.abort(parent.reason);
    else parent.addEventListener("abort", this, { once: true });
    // A closure, not setTimeout's extra arguments: tests inject timers.
    if (ms !== undefined) this.#timer = setTimeout(() => this.#expire(), ms);
  }

  /** The attempt's `ctx.signal`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Aborts the attempt (a no-op once aborted). */
  abort(reason: unknown): void {
    this.#controller.abort(reason);
  }

  /** The parent aborted. */
  handleEvent(): void {
    this.#controller.abort(this.#parent.reason);
  }

  /** The timer fired: a TimeoutError, unless the attempt was aborted first. */
  #expire(): void {
    this.#timer = undefined;
    if (this.#controller.signal.aborted) return;
    this.#timedOut = true;
    this.#controller.abort(
      new TimeoutError(`${this.#what} timed out after ${this.#ms} ms`),
    );
  }

  /**
   * Ends the attempt: clears the timer and leaves the parent. True when the
   * deadline passed during the attempt: the attempt then failed with
   * {@linkcode Deadline.reason} (the TimeoutError), whatever the call
   * returned.
   */
  end(): boolean {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#parent.removeEventListener("abort", this);
    return this.#timedOut;
  }

  /** Why the signal aborted (the TimeoutError once the deadline passed). */
  get reason(): unknown {
    return this.#controller.signal.reason;
  }
}

/** Why a failed attempt is not retried because `retryIf` threw: its error. */
export interface RetryIfThrew {
  readonly error: unknown;
}

/**
 * The retry decision for an attempt that failed with `error`: the wait (ms)
 * before the next attempt, `undefined` for no retry (no policy, no attempts
 * left, or `retryIf` said no), or `{ error }` when `retryIf` (or the jitter's
 * `random()`) threw: that error becomes the item's.
 *
 * @param attempt The attempt that failed (1 for the first).
 * @param ctx What `retryIf` is given with the error.
 */
export function retryDelay(
  retry: RetryPolicy | undefined,
  attempt: number,
  error: unknown,
  ctx: unknown,
): number | undefined | RetryIfThrew {
  if (retry === undefined || attempt >= retry.attempts) return undefined;
  try {
    // Each caller's retryIf is typed with its own ctx (a stage's, a batch's).
    const retryIf = retry.retryIf as (error: unknown, ctx: unknown) => boolean;
    if (!retryIf(error, ctx)) return undefined;
    return backoffDelay(retry, attempt);
  } catch (thrown) {
    return { error: thrown };
  }
}

/**
 * One signal per worker slot, made the first time the slot is used, so a
 * signal never has more listeners from the calls than the one call in its
 * slot (Node warns from 11 listeners on one signal). {@linkcode SlotSignals.abort}
 * aborts them all (the run or pool stopped); {@linkcode SlotSignals.renew}
 * gives one slot a fresh signal after its call was aborted alone.
 */
export class SlotSignals {
  readonly #controllers: AbortController[] = [];
  /** Indexed by slot; read on the hot path. */
  readonly signals: AbortSignal[] = [];
  #aborted = false;
  #reason: unknown = undefined;

  /** The signal of `slot`, made if it is the first use of the slot. */
  get(slot: number): AbortSignal {
    return this.signals[slot] ?? this.#make(slot);
  }

  #make(slot: number): AbortSignal {
    const controller = new AbortController();
    if (this.#aborted) controller.abort(this.#reason);
    this.#controllers[slot] = controller;
    return this.signals[slot] = controller.signal;
  }

  /** Aborts the signal of one slot; the slot's next call gets a fresh one. */
  abortSlot(slot: number, reason: unknown): void {
    const controller = this.#controllers[slot];
    if (controller === undefined || this.#aborted) return;
    controller.abort(reason);
  }

  /**
   * The signal of `slot` after its signal was aborted alone: a fresh one
   * (unless every slot was aborted).
   */
  renew(slot: number): AbortSignal {
    return this.#aborted ? this.signals[slot] : this.#make(slot);
  }

  /** Aborts every slot's signal, and those of slots made from now on. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    for (const controller of this.#controllers) {
      if (controller !== undefined) controller.abort(reason);
    }
  }
}
