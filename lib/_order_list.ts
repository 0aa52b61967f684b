/**
 * Input order: every live token of a run in one doubly linked list, oldest
 * first, with the batch stages' cursors into it. ARCHITECTURE.md ("Order")
 * explains why order is kept only here.
 *
 * @module
 */

import type { Token } from "./_token.ts";

/** A batch stage's place in the order list. */
export interface Cursor {
  /**
   * The first token of the list this batch has not taken yet (null: past the
   * end). Every token before it has passed the batch; every token from it on
   * is at the batch or upstream, so the batch takes consecutive items.
   */
  cursor: Token | null;
}

/**
 * The order list. Flatten splices its elements in place; absorbed, filtered
 * and delivered tokens are unlinked at once, so it only holds live tokens and
 * its head is the next result.
 */
export class OrderList {
  head: Token | null = null;
  tail: Token | null = null;
  readonly #cursors: readonly Cursor[];

  constructor(cursors: readonly Cursor[]) {
    this.#cursors = cursors;
  }

  /** A new source item, at the end; cursors past the end point to it. */
  append(t: Token): void {
    const tail = this.tail;
    t.prev = tail;
    if (tail === null) this.head = t;
    else tail.next = t;
    this.tail = t;
    for (const c of this.#cursors) if (c.cursor === null) c.cursor = t;
  }

  /** An element of a flattened item, right after its predecessor `at`. */
  insertAfter(at: Token, t: Token): void {
    const next = at.next;
    t.prev = at;
    t.next = next;
    at.next = t;
    if (next === null) this.tail = t;
    else next.prev = t;
  }

  /** `t` leaves the list; a cursor on it moves to the next token. */
  unlink(t: Token): void {
    const { prev, next } = t;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    for (const c of this.#cursors) if (c.cursor === t) c.cursor = next;
    t.prev = t.next = null;
  }
}
