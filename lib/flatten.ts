import { makeStage, type Stage } from "./stage.ts";
import { assertName, assertOptions } from "./_validate.ts";

/** Options of {@linkcode flatten}. */
export interface FlattenOptions {
  /**
   * Stage name in errors, stats and events.
   * @default {"flatten#<position>"}
   */
  name?: string;
}

/**
 * A stage that emits each element of an array (or any iterable) item, in
 * order. An empty array emits nothing (the item counts as filtered); an item
 * that is not iterable fails the run with a `PipelineError` whose cause is a
 * `TypeError`.
 *
 * Order: the elements take the place of their item, so in input order they
 * come out consecutively, where the item would have been. An item is expanded
 * at once (its elements are already in memory when it is an array).
 *
 * An async iterable (an async generator: a generator stage's fan-out) is read
 * to its end, then its elements go on as an array's would: in input order
 * they keep their item's place, and later items' results wait behind them.
 * While it is read, the item holds its place in the read-ahead budget (its
 * elements are counted as shares of it, as an array's are), so memory grows
 * with the elements of the items being read, not with the input. A
 * generator that throws fails the run with a `PipelineError`; a run that
 * stops closes the generators being read (`return()`, not awaited).
 *
 * @param options The stage name.
 * @returns The stage.
 *
 * @example Back from batches to items
 * ```ts
 * import { batch, flatten, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = pipeline(
 *   batch<number>({ maxSize: 2 }),
 *   map((xs: number[]) => xs.map((x) => x * 10)),
 *   flatten(),
 * );
 * assert.deepEqual(await p.run([1, 2, 3]).collect(), [10, 20, 30]);
 * ```
 *
 * @example An async generator's fan-out
 * ```ts
 * import { flatten, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const pages = pipeline(
 *   map(async function* (site: string) {
 *     for (let page = 1; page <= 2; page++) yield `${site}/${page}`;
 *   }),
 *   flatten(),
 * );
 * assert.deepEqual(await pages.run(["a", "b"]).collect(), [
 *   "a/1",
 *   "a/2",
 *   "b/1",
 *   "b/2",
 * ]);
 * ```
 */
export function flatten<T>(
  options?: FlattenOptions,
): Stage<Iterable<T> | AsyncIterable<T>, T> {
  assertOptions("options", options, "flatten()", ["name"]);
  const name = options?.name;
  assertName(name);
  return makeStage({ kind: "flatten", name });
}
