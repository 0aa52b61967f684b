/**
 * A flatten stage at run time: replaces a token with one token per element.
 * It is instantaneous (no slots, no queue).
 *
 * @module
 */

import { type RunHost, RUNNING } from "./_run.ts";
import { callFreeStageStats, type StagePart } from "./_run_stats.ts";
import { SAMPLE_MASK, Token } from "./_token.ts";
import { PipelineError } from "./errors.ts";
import type { StageStats } from "./stats.ts";

/** A flatten stage of one run. */
export class FlattenStage implements StagePart {
  readonly kind = "flatten";
  readonly name: string;
  readonly #run: RunHost;
  /** Its position in the pipeline. */
  readonly #at: number;
  completed = 0;
  readonly recentMs = 0;
  /** Async iterables being read, closed if the run stops. */
  readonly #reading = new Set<AsyncIterator<unknown>>();

  constructor(run: RunHost, name: string, at: number) {
    this.#run = run;
    this.name = name;
    this.#at = at;
  }

  /**
   * `t` reached this stage: its elements move on in its place. The first
   * element reuses `t`. A batch with a flatten after it kept its members'
   * tokens: an array of the batch's length reuses them, so element `i` is
   * member `i` again (index, id, weight, times) and no token is allocated.
   * Any other array is a fan-out: new tokens with the parent's index and id
   * and a share of its weight.
   */
  enter(t: Token): void {
    const value = t.value;
    if (isAsyncOnly(value)) return void this.#readAsync(t, value);
    const elements = this.#elements(t);
    if (elements !== undefined) this.#expand(t, elements);
  }

  /** The run stopped: async iterables being read are closed (not awaited). */
  stop(): void {
    for (const it of this.#reading) {
      Promise.resolve().then(() => it.return?.()).catch(() => {});
    }
    this.#reading.clear();
  }

  /**
   * An async iterable (an async generator's fan-out): read to its end while
   * `t` keeps its place (input order) and its weight in the budget, then
   * its elements move on as an array's would.
   */
  async #readAsync(t: Token, value: AsyncIterable<unknown>): Promise<void> {
    const run = this.#run;
    const elements: unknown[] = [];
    let it: AsyncIterator<unknown>;
    try {
      it = value[Symbol.asyncIterator]();
    } catch (error) {
      return this.#fail(t, error);
    }
    this.#reading.add(it);
    try {
      for (;;) {
        const r = await it.next();
        if (run.state !== RUNNING) return; // stop() closed it
        if (r.done) break;
        elements.push(r.value);
      }
    } catch (error) {
      if (run.state === RUNNING) this.#fail(t, error);
      return;
    } finally {
      this.#reading.delete(it);
    }
    this.#expand(t, elements);
    run.pump();
  }

  /** `t`'s elements move on in its place. */
  #expand(t: Token, elements: ArrayLike<unknown>): void {
    const run = this.#run;
    this.completed++;
    const count = elements.length;
    if (count === 0) return run.drop(t);
    run.grow(this.#at, count - 1);
    const members = t.members !== null && t.members.length === count
      ? t.members
      : null;
    run.stats.tracker?.flattened(t.id, count, members !== null);
    t.members = null;
    const children: Token[] = [t];
    t.value = elements[0];
    if (members !== null && members[0] !== t) { // a stand-in (see asMember)
      t.index = members[0].index;
      t.id = members[0].id;
      t.members = members[0].members;
    }
    // Whole units: the first `extra` elements of a fan-out carry one more.
    const share = Math.floor(t.weight / count);
    const extra = t.weight - share * count;
    const timeAll = run.stats.timeAll;
    const order = run.order;
    let rest = 0; // the other members' weights (the first keeps the rest)
    let after = t;
    for (let i = 1; i < count; i++) {
      let child: Token;
      if (members !== null) {
        child = members[i];
        child.value = elements[i];
        rest += child.weight;
      } else {
        child = new Token(
          elements[i],
          t.index,
          t.id,
          i < extra ? share + 1 : share,
        );
        // Its parent's birth, sampled like source items (`SAMPLE_MASK`,
        // or all while calls are slow): a timed batch of 32 timing all its
        // elements downstream was a quarter of every item's calls in W5.
        if (t.times !== null && (timeAll || (i & SAMPLE_MASK) === 0)) {
          child.times = { bornAt: t.times.bornAt, enteredAt: 0 };
        }
      }
      child.stage = this.#at;
      if (order !== null) order.insertAfter(after, child);
      after = child;
      children.push(child);
    }
    t.weight = members !== null
      ? t.weight - rest
      : extra > 0
      ? share + 1
      : share;
    for (let i = 0; i < count && run.state === RUNNING; i++) {
      run.forward(children[i]);
    }
  }

  /** The run fails: `t`'s elements could not be read. */
  #fail(t: Token, cause: unknown): void {
    this.#run.stop(
      new PipelineError(this.name, t.id, t.index, t.value, cause),
    );
  }

  /** `t`'s value as elements; undefined (the run stops) if it has none. */
  #elements(t: Token): ArrayLike<unknown> | undefined {
    const value = t.value;
    if (Array.isArray(value)) return value;
    let cause: unknown;
    if (
      value !== null && value !== undefined &&
      typeof (value as Iterable<unknown>)[Symbol.iterator] === "function"
    ) {
      try {
        return Array.from(value as Iterable<unknown>);
      } catch (error) {
        cause = error;
      }
    } else {
      cause = new TypeError(
        `flatten needs an array, an iterable or an async iterable: item ${
          String(t.id)
        } is ${value === null ? "null" : typeof value}`,
      );
    }
    this.#fail(t, cause);
    return undefined;
  }

  snapshot(elapsedMs: number): StageStats {
    return callFreeStageStats(
      this.name,
      "flatten",
      this.completed,
      0,
      elapsedMs,
    );
  }
}

/** An async iterable that is not also a sync one (an array stays an array). */
function isAsyncOnly(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === "object" &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] ===
      "function" &&
    typeof (value as Iterable<unknown>)[Symbol.iterator] !== "function";
}
