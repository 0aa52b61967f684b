/**
 * Per-key order in a work stage (`map(fn, { key })`): at most one item per
 * key is in the stage's hands (running, queued for a slot, or waiting out a
 * retry backoff); later items of that key wait here, holding no slot, and go
 * on one at a time in the order they reached the stage.
 *
 * @module
 */

import { Fifo } from "./_fifo.ts";
import type { Token } from "./_token.ts";

/** The keys of one keyed stage, and the items waiting for theirs. */
export class KeyOrder {
  readonly #keyOf: (value: unknown) => unknown;
  /** Busy keys, each with the items waiting for it (null: none yet). */
  readonly #busy = new Map<unknown, Fifo<Token> | null>();
  /** The item holding each busy key, and that key. */
  readonly #holder = new Map<Token, unknown>();
  /** Items waiting for their key (in `stats().queued`). */
  waiting = 0;

  constructor(keyOf: (value: unknown) => unknown) {
    this.#keyOf = keyOf;
  }

  /**
   * `t` reached the stage: true when its key was free (it now holds it and
   * goes on), false when it waits for it. Throws what the key function throws.
   */
  admit(t: Token): boolean {
    const key = this.#keyOf(t.value);
    if (!this.#busy.has(key)) {
      this.#busy.set(key, null);
      this.#holder.set(t, key);
      return true;
    }
    let waiting = this.#busy.get(key);
    if (waiting === null) this.#busy.set(key, waiting = new Fifo<Token>());
    waiting!.push(t);
    this.waiting++;
    return false;
  }

  /**
   * `t` left the stage (passed on, filtered, skipped): the next item of its
   * key, which now holds it, if one waits.
   */
  release(t: Token): Token | undefined {
    if (!this.#holder.has(t)) return undefined;
    const key = this.#holder.get(t);
    this.#holder.delete(t);
    const next = this.#busy.get(key)?.shift();
    if (next === undefined) {
      this.#busy.delete(key);
      return undefined;
    }
    this.waiting--;
    this.#holder.set(next, key);
    return next;
  }

  /** The run stopped: nothing waits any more. */
  clear(): void {
    this.#busy.clear();
    this.#holder.clear();
    this.waiting = 0;
  }
}
