// A first-in first-out queue on a growable ring buffer: push and shift are O(1)
// and allocate nothing in the steady state (Array#shift is O(n), and emptying
// an array with `length = 0` is a slow runtime call on the hot path).

/** A FIFO queue. */
export class Fifo<T> {
  #buffer: (T | undefined)[] = new Array(16);
  #mask = 15;
  #head = 0;
  #size = 0;

  /** Number of queued values. */
  get size(): number {
    return this.#size;
  }

  /** Adds `value` at the back. */
  push(value: T): void {
    if (this.#size === this.#buffer.length) this.#grow();
    this.#buffer[(this.#head + this.#size) & this.#mask] = value;
    this.#size++;
  }

  /** Adds `value` at the front (it is the next one out). */
  unshift(value: T): void {
    if (this.#size === this.#buffer.length) this.#grow();
    this.#head = (this.#head - 1) & this.#mask;
    this.#buffer[this.#head] = value;
    this.#size++;
  }

  /** Removes and returns the front value, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const value = this.#buffer[this.#head];
    this.#buffer[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return value;
  }

  /** Drops every value. */
  clear(): void {
    this.#buffer = new Array(16);
    this.#mask = 15;
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const old = this.#buffer;
    const next: (T | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.#size; i++) {
      next[i] = old[(this.#head + i) & this.#mask];
    }
    this.#buffer = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}
