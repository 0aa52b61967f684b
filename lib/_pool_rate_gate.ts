// The rate limit of a Pool's starts. A start is taken at once when the limiter
// allows it; otherwise the pool waits for a turn, once for the whole pool, and
// offers the turn to its first queued task. The start is recorded when the
// turn is granted; a turn nothing may take then (the pool is paused, its slots
// are full, the task was aborted) is wasted rather than taken late, so the
// window is never exceeded.
import type { RateLimiter } from "./_rate_limiter.ts";

/**
 * A pool's rate-limit gate: the limiter and the pool's one pending wait.
 * Internal: `PoolCore` asks it before each start.
 */
export class RateGate {
  readonly #limiter: RateLimiter;
  /** Starts what may start now (the pool's dispatch). */
  readonly #granted: () => void;
  /** Aborts the pending wait (set while one is pending). */
  #wait: AbortController | undefined;
  /** A turn was granted and not taken yet (only inside `#granted`). */
  #turn = false;

  /**
   * @param limiter The pool's limiter.
   * @param granted Called when a waited-for turn is granted: it starts what
   * may start (asking `take()`, which gives it the turn first).
   */
  constructor(limiter: RateLimiter, granted: () => void) {
    this.#limiter = limiter;
    this.#granted = granted;
  }

  /**
   * Whether a new task may start at once (nobody waits for a turn); the start
   * is recorded if so.
   */
  tryAcquire(): boolean {
    return this.#limiter.tryAcquire();
  }

  /**
   * Whether the first queued task may start now (a slot being free): the
   * turn just granted, or a start the limiter allows now (recorded). If not,
   * waits for a turn.
   */
  take(): boolean {
    if (this.#turn) {
      this.#turn = false;
      return true;
    }
    if (this.#limiter.tryAcquire()) return true;
    this.#waitForTurn();
    return false;
  }

  /** Waits (once for the whole pool) until the limiter gives a turn. */
  #waitForTurn(): void {
    if (this.#wait !== undefined) return;
    const wait = this.#wait = new AbortController();
    this.#limiter.acquire(wait.signal).then(() => {
      this.#wait = undefined;
      this.#turn = true;
      this.#granted();
      this.#turn = false; // not taken: wasted
    }, () => {
      // Closed, or the queue emptied (no timer is left behind).
      if (this.#wait === wait) this.#wait = undefined;
    });
  }

  /** The queue emptied: the pending wait, if any, is given up. */
  idle(): void {
    if (this.#wait !== undefined) {
      this.#wait.abort();
      this.#wait = undefined;
    }
  }

  /** No start is allowed any more; a pending wait ends. */
  close(reason: unknown): void {
    this.#limiter.close(reason);
  }
}
