/**
 * The token: one unit of work in flight through a run's stages. ARCHITECTURE.md
 * explains the model.
 *
 * @module
 */

/**
 * The weight of one source item. Weights are integers in these units, so a
 * flattened item's share (its weight split in whole units) sums back exactly,
 * budget comparisons are exact, and stats (weights / UNIT, a power of two)
 * balance exactly: `itemsIn === itemsOut + skipped + … + inFlight`.
 */
export const UNIT = 2 ** 20;

/**
 * A source item, a batch, or an element of a flattened item. Kept as it moves
 * on from stage to stage; once it has left the run as a result, it may carry
 * a later source item (the scheduler's spare list).
 */
export class Token {
  value: unknown;
  /** Input position of the item (of the first item, for a batch). */
  index: number;
  id: unknown;
  /** The stage that holds it; the number of stages once it is a result. */
  stage = 0;
  /**
   * How many source items this token stands for, in `UNIT`s: one for a source
   * item, the sum of its members for a batch, a share of its parent (in whole
   * units) for an element of a flattened item. Returned to the read-ahead
   * budget when it leaves.
   */
  weight: number;
  // Links of the order list (input order only).
  prev: Token | null = null;
  next: Token | null = null;
  /**
   * Its times, when they are measured (`sampled`, or all while calls
   * are slow). A separate object: double fields on every token would box.
   */
  times: Times | null = null;
  // Progress within a stage with retries: the function of a multi-task stage
  // to run next, its input, and the attempt number.
  step = 0;
  partial: unknown = undefined;
  attempt = 0;
  /**
   * A batch on its way to a flatten: its members' tokens (the first is the
   * carrier itself, or a stand-in keeping the carrier's own members), which
   * the flatten's elements reuse with their own index, id and times.
   */
  members: Token[] | null = null;
  /** A result that is the run's error, delivered at its turn (failAtTurn). */
  failed = false;

  constructor(value: unknown, index: number, id: unknown, weight: number) {
    this.value = value;
    this.index = index;
    this.id = id;
    this.weight = weight;
  }
}

/**
 * Items timed while calls are fast: the first 16, then one in 1,024 (index
 * `& SAMPLE_MASK` is 0). A clock read costs about as much as scheduling an
 * item (Deno's `performance.now()` more: one in 128 cost W1 `collect()` 4 %
 * there).
 */
export const SAMPLE_MASK = 1023;

/** Whether the item at `index` is timed while calls are fast. */
export function sampled(index: number): boolean {
  return (index & SAMPLE_MASK) === 0 || index < 16;
}

/** A token's times (ms, `performance.now()`). */
export interface Times {
  /** When read from the source; NaN when timed only from a later stage on. */
  readonly bornAt: number;
  /** When queued at its current stage (0: not queued). */
  enteredAt: number;
}

/**
 * Spare tokens kept at most: one is enough in the steady state (a result goes
 * out, the next item comes in); the bound keeps a flatten that multiplies
 * items from hoarding them.
 */
const SPARE_MAX = 64;

/**
 * Tokens of results that have left the run, reused for later source items,
 * so a run in its steady state allocates no token per item (W1:
 * bench/README.md, "History of the hot path").
 */
export class Spares {
  #top: Token | null = null;
  #count = 0;

  /**
   * `t` has left the run as a result and nothing refers to it any more (it
   * is unlinked, out of every slot; events copied its fields).
   */
  put(t: Token): void {
    if (this.#count >= SPARE_MAX) return;
    t.value = undefined;
    t.times = null;
    t.members = null;
    t.next = this.#top;
    this.#top = t;
    this.#count++;
  }

  /**
   * A token for a source item: `reuse` (a token that has left the run, as
   * one put here would have), else a spare one, else a new one.
   */
  take(value: unknown, index: number, id: unknown, reuse?: Token): Token {
    let t = reuse;
    if (t === undefined) {
      const top = this.#top;
      if (top === null) return new Token(value, index, id, UNIT);
      // step, partial and attempt are back at 0 once a token is a result.
      this.#top = top.next;
      this.#count--;
      top.next = null;
      t = top;
    }
    t.value = value;
    t.index = index;
    t.id = id;
    t.stage = 0;
    t.weight = UNIT;
    return t;
  }
}
