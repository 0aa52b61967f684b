import type { RetryOptions } from "./retry.ts";
import { makeStage, type Stage, type TaskFn } from "./stage.ts";
import type {
  AdaptiveConcurrency,
  OnError,
  RateLimit,
  TaskContext,
} from "./types.ts";
import { assertFunction } from "./_validate.ts";
import { readMapOptions } from "./_stage_options.ts";

/** One step of a multi-task stage: `(item, ctx) => value | Promise<value>`. */
export type Task<I, O> = (item: I, ctx: TaskContext) => O | PromiseLike<O>;

/** Options of {@linkcode map} and {@linkcode filter}. */
export interface MapOptions<I = unknown> {
  /**
   * Stage name in errors, stats and events.
   * @default {"map#<position>"}
   */
  name?: string;
  /**
   * Worker slots of this stage: never more calls in flight than this. A free
   * worker takes the next waiting item at once, so one slow item never holds
   * back the others. `Infinity` is allowed (the run's `bufferSize` then bounds
   * the work). `{ adaptive: { min, max, initial? } }` lets the stage find its
   * own limit (see {@linkcode AdaptiveConcurrency}). A running flow changes it
   * with `flow.setConcurrency(name, n)`.
   * @default {1}
   */
  concurrency?: number | AdaptiveConcurrency;
  /**
   * Retry failed calls with exponential backoff and full jitter; see
   * {@linkcode RetryOptions}. A worker waiting out a backoff gives its slot
   * to other items meanwhile.
   * @default {undefined}
   */
  retry?: RetryOptions;
  /**
   * Time limit per attempt: `ctx.signal` aborts and the attempt fails with a
   * `TimeoutError` (then retry and `onError` apply as to any error). The
   * worker slot is held until the call returns, so pass `ctx.signal` on.
   * @default {undefined}
   */
  timeoutMs?: number;
  /**
   * What to do with an item that failed for good; see {@linkcode OnError}.
   * @default {"fail"}
   */
  onError?: OnError;
  /**
   * At most `limit` call starts (retries included) in any sliding window of
   * `intervalMs`: no bursts at window edges.
   * @default {undefined}
   */
  rateLimit?: RateLimit;
  /**
   * Per-key order: calls on items with the same key never overlap and run in
   * the order the items reach the stage (input order for a first stage);
   * items of different keys run in parallel, up to `concurrency`. An item
   * whose key is busy waits holding no worker slot, so other keys use the
   * slots meanwhile; it counts in `stats().stages[i].queued` and in the
   * read-ahead budget like any item in the stage. A retrying item keeps its
   * key through its backoffs; an item that leaves the stage (passed on,
   * filtered, skipped by `onError`) lets the next one of its key go. Keys
   * are compared as `Map` keys (`SameValueZero`). A key function that throws
   * fails the run.
   *
   * @example Updates per account, in order within each account
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const log: string[] = [];
   * const apply = map(async (u: { account: string; n: number }) => {
   *   await new Promise((r) => setTimeout(r, u.account === "a" ? 5 : 1));
   *   log.push(`${u.account}${u.n}`);
   * }, { concurrency: 4, key: (u) => u.account });
   * await pipeline(apply).run([
   *   { account: "a", n: 1 },
   *   { account: "b", n: 1 },
   *   { account: "a", n: 2 },
   *   { account: "b", n: 2 },
   * ]).collect();
   * assert.deepEqual(log.filter((x) => x[0] === "a"), ["a1", "a2"]);
   * assert.deepEqual(log.filter((x) => x[0] === "b"), ["b1", "b2"]);
   * ```
   * @default {undefined}
   */
  key?: (item: I) => unknown;
}

/**
 * A stage that calls `fn(item, ctx)` for every item, with up to `concurrency`
 * calls in flight, and emits what it returns (or what its promise resolves
 * to).
 *
 * Given an array of functions, each item goes through them in sequence inside
 * one worker slot (a multi-task stage): the slot is held from the first
 * function to the last.
 *
 * Order: a `map` stage hands each result on the moment it is ready; the run's
 * `order` option decides what the consumer sees.
 *
 * @param fn The function, or the functions run in sequence per item.
 * @param options Name and concurrency.
 * @returns The stage.
 * @throws {TypeError} When `fn` is not a function (or an array of functions).
 * @throws {RangeError} When `concurrency` is not a positive integer or `Infinity`.
 *
 * @example Ten workers, results in input order
 * ```ts
 * import { map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const slowSquare = async (x: number) => {
 *   await new Promise((r) => setTimeout(r, (5 - x) * 2));
 *   return x * x;
 * };
 * const squares = pipeline(map(slowSquare, { concurrency: 10 }));
 * assert.deepEqual(await squares.run([1, 2, 3, 4]).collect(), [1, 4, 9, 16]);
 * ```
 *
 * @example A multi-task stage
 * ```ts
 * import { map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = pipeline(map([(x: number) => x + 1, (x: number) => `#${x}`]));
 * assert.deepEqual(await p.run([1, 2]).collect(), ["#2", "#3"]);
 * ```
 */
export function map<I, O>(
  fn: Task<I, O>,
  options?: MapOptions<I>,
): Stage<I, O>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map<I, A, O>(
  fns: readonly [Task<I, A>, Task<A, O>],
  options?: MapOptions<I>,
): Stage<I, O>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map<I, A, B, O>(
  fns: readonly [Task<I, A>, Task<A, B>, Task<B, O>],
  options?: MapOptions<I>,
): Stage<I, O>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map<I, A, B, C, O>(
  fns: readonly [Task<I, A>, Task<A, B>, Task<B, C>, Task<C, O>],
  options?: MapOptions<I>,
): Stage<I, O>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map<I, A, B, C, D, O>(
  fns: readonly [Task<I, A>, Task<A, B>, Task<B, C>, Task<C, D>, Task<D, O>],
  options?: MapOptions<I>,
): Stage<I, O>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map(
  fns: readonly Task<unknown, unknown>[],
  options?: MapOptions,
): Stage<unknown, unknown>;
/** A multi-task stage: the functions run in sequence on each item (see the first overload). */
export function map(
  fn: Task<unknown, unknown> | readonly Task<unknown, unknown>[],
  options?: MapOptions,
): Stage<unknown, unknown> {
  let fns: TaskFn[];
  if (Array.isArray(fn)) {
    if (fn.length === 0) {
      throw new TypeError(
        "'fn' must be a function or a non-empty array of functions: current value is an empty array",
      );
    }
    fn.forEach((f, i) => assertFunction(`fn[${i}]`, f));
    fns = [...fn];
  } else {
    assertFunction("fn", fn);
    fns = [fn as TaskFn];
  }
  return makeStage({ kind: "map", fns, ...readMapOptions(options, "map()") });
}
