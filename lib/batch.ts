import { makeStage, type Stage } from "./stage.ts";
import {
  assertDuration,
  assertInteger,
  assertName,
  assertOptions,
} from "./_validate.ts";

/** Options of {@linkcode batch}. */
export interface BatchOptions {
  /** A batch is emitted the moment it holds this many items. Required. */
  maxSize: number;
  /**
   * Flush a partial batch this long after its first item joined it: a hard
   * bound, the timer starting at that first item (not reset by later ones).
   * Without it, a batch is emitted only when full or at the end of input.
   * @default {undefined}
   */
  maxWaitMs?: number;
  /**
   * A timed flush waits until the batch holds at least this many items; once
   * due, it flushes as soon as `minSize` is reached. The end of input always
   * emits the remainder, however small.
   * @default {1}
   */
  minSize?: number;
  /**
   * Stage name in errors, stats and events.
   * @default {"batch#<position>"}
   */
  name?: string;
}

/**
 * A stage that groups consecutive items into arrays of at most `maxSize`.
 *
 * Order: with the run's `order: "input"` (the default), a batch holds
 * consecutive input items (`[1,2,3]`, `[4,5,6]`, …) whatever order earlier
 * stages finished them in, so results are deterministic; with
 * `order: "completion"`, items join batches in the order they arrive.
 *
 * Flush: when full; when `maxWaitMs` has passed since the batch's first item
 * (and it holds `minSize`); and at the end of input, where the remainder is
 * always emitted. Never an empty batch; no item is ever dropped by batching.
 *
 * @param options `maxSize` (required), `maxWaitMs`, `minSize`, `name`.
 * @returns The stage.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When `maxSize` or `minSize` is not a positive integer,
 * `minSize > maxSize`, or `maxWaitMs` is negative or not finite.
 *
 * @example The conveyor example: `x*2 | batch(3) sum | +10`
 * ```ts
 * import { batch, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = pipeline(
 *   map(async (x: number) => x * 2, { concurrency: 4 }),
 *   batch({ maxSize: 3 }),
 *   map((xs: number[]) => xs.reduce((a, b) => a + b, 0)),
 *   map((x: number) => x + 10),
 * );
 * assert.deepEqual(await p.run([1, 2, 3, 4, 5, 6, 7]).collect(), [22, 40, 24]);
 * ```
 */
export function batch<T>(options: BatchOptions): Stage<T, T[]> {
  if (options === undefined) {
    throw new TypeError(
      "'options' must be an object with 'maxSize': current value is undefined",
    );
  }
  assertOptions("options", options, "batch()", [
    "maxSize",
    "maxWaitMs",
    "minSize",
    "name",
  ]);
  const { maxSize, maxWaitMs, minSize = 1, name } = options;
  assertInteger("maxSize", maxSize, 1);
  assertInteger("minSize", minSize, 1);
  if (minSize > maxSize) {
    throw new RangeError(
      `'minSize' must be <= 'maxSize' (${maxSize}): current value is ${minSize}`,
    );
  }
  if (maxWaitMs !== undefined) {
    assertDuration("maxWaitMs", maxWaitMs, { infinity: true });
  }
  assertName(name);
  return makeStage({
    kind: "batch",
    name,
    maxSize,
    minSize,
    maxWaitMs: maxWaitMs === Infinity ? undefined : maxWaitMs,
  });
}
