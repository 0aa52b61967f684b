import { Fifo } from "./_fifo.ts";
import { show } from "./_validate.ts";

/**
 * Yields the values of `values` (promises, thenables or plain values) in the
 * order they settle, like AntFlow's and `concurrent.futures`' `as_completed`.
 *
 * - The iterable is read at once, when `asCompleted()` is called, and a
 *   handler is attached to every promise then (as `Promise.all` does), so a
 *   rejection never goes unhandled while the loop is busy with earlier values.
 * - A rejection is thrown at its turn (in completion order), which ends the
 *   iteration.
 * - Leaving early (`break`, `return()`, a thrown rejection) leaves no
 *   dangling work: the handlers on the promises not consumed become inert,
 *   so their later rejections are dropped rather than reported as unhandled.
 *   The promises themselves are not cancelled: pass an `AbortSignal` to the
 *   work for that.
 * - Plain (non-promise) values count as already settled.
 *
 * @param values An iterable (an array, a `Set`, a generator) of promises or
 * values.
 * @returns An async generator of the values in completion order.
 * @throws {TypeError} When `values` is not iterable.
 *
 * @example Fastest first
 * ```ts
 * import { asCompleted } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const after = (ms: number, value: string) =>
 *   new Promise<string>((r) => setTimeout(() => r(value), ms));
 * const out: string[] = [];
 * for await (const v of asCompleted([after(30, "slow"), after(1, "fast")])) {
 *   out.push(v);
 * }
 * assert.deepEqual(out, ["fast", "slow"]);
 * ```
 *
 * @example A rejection is thrown at its turn
 * ```ts
 * import { asCompleted } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const out: number[] = [];
 * await assert.rejects(async () => {
 *   for await (const v of asCompleted([1, Promise.reject(new Error("boom"))])) {
 *     out.push(v);
 *   }
 * }, /boom/);
 * assert.deepEqual(out, [1]);
 * ```
 *
 * @example Promises of different types: the union, as `Promise.race`
 * ```ts
 * import { asCompleted } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const seen: (number | string)[] = [];
 * for await (const v of asCompleted([Promise.resolve(1), Promise.resolve("a")])) {
 *   seen.push(v); // v: number | string
 * }
 * assert.deepEqual(seen.sort(), [1, "a"]);
 * ```
 */
export function asCompleted<T>(
  values: Iterable<T>,
): AsyncGenerator<Awaited<T>, void, undefined> {
  if (
    values == null ||
    typeof (values as Iterable<T>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `'values' must be an Iterable: current value is ${show(values)}`,
    );
  }
  const state = new Settled<Awaited<T>>();
  for (const value of values) {
    state.remaining++;
    Promise.resolve(value).then(state.onValue, state.onError);
  }
  return drain(state);
}

/** Outcomes in settling order, shared by the handlers and the generator. */
class Settled<T> {
  remaining = 0;
  /** False once the iteration has ended: the handlers then do nothing. */
  active = true;
  readonly outcomes = new Fifo<{ ok: boolean; value: unknown }>();
  wake: (() => void) | undefined = undefined;

  onValue = (value: T): void => this.#push(true, value);
  onError = (error: unknown): void => this.#push(false, error);

  #push(ok: boolean, value: unknown): void {
    if (!this.active) return;
    this.outcomes.push({ ok, value });
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
  }
}

async function* drain<T>(
  state: Settled<T>,
): AsyncGenerator<T, void, undefined> {
  try {
    while (state.remaining > 0) {
      if (state.outcomes.size === 0) {
        await new Promise<void>((resolve) => (state.wake = resolve));
      }
      const { ok, value } = state.outcomes.shift()!;
      state.remaining--;
      if (!ok) throw value;
      yield value as T;
    }
  } finally {
    state.active = false;
    state.outcomes.clear();
  }
}
