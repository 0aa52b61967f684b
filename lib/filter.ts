import type { MapOptions } from "./map.ts";
import { makeStage, type Stage } from "./stage.ts";
import type { TaskContext } from "./types.ts";
import { assertFunction } from "./_validate.ts";
import { readMapOptions } from "./_stage_options.ts";

/**
 * A stage that keeps the items for which `predicate(item, ctx)` is truthy (or
 * resolves truthy) and drops the others. Dropped items count as filtered in the
 * run's accounting; in input order they never hold back later items.
 * Up to `concurrency` predicates run at once.
 *
 * @param predicate Sync or async test; a type guard narrows the output type.
 * @param options Name (default `filter#<position>`) and concurrency (default 1).
 * @returns The stage.
 * @throws {TypeError} When `predicate` is not a function.
 * @throws {RangeError} When `concurrency` is not a positive integer or `Infinity`.
 *
 * @example Keep the even numbers
 * ```ts
 * import { filter, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const evens = pipeline(filter(async (x: number) => x % 2 === 0));
 * assert.deepEqual(await evens.run([1, 2, 3, 4]).collect(), [2, 4]);
 * ```
 */
export function filter<T, S extends T>(
  predicate: (item: T, ctx: TaskContext) => item is S,
  options?: MapOptions<T>,
): Stage<T, S>;
/** A stage that keeps the items for which `predicate` is truthy (see the first overload). */
export function filter<T>(
  predicate: (item: T, ctx: TaskContext) => unknown,
  options?: MapOptions<T>,
): Stage<T, T>;
/** A stage that keeps the items for which `predicate` is truthy (see the first overload). */
export function filter<T>(
  predicate: (item: T, ctx: TaskContext) => unknown,
  options?: MapOptions<T>,
): Stage<T, T> {
  assertFunction("predicate", predicate);
  return makeStage({
    kind: "filter",
    fns: [predicate],
    ...readMapOptions(options, "filter()"),
  });
}
