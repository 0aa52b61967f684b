import type { RetryPolicy } from "./retry.ts";
import type { OnError, RateLimit, TaskContext } from "./types.ts";

/** A stage function: receives the item and the task context. */
// deno-lint-ignore no-explicit-any
export type TaskFn = (item: any, ctx: TaskContext) => unknown;

/** The description of a `map` or `filter` stage, read by the scheduler. */
export interface MapSpec {
  /** `"filter"` stages drop the items their function answers falsy for. */
  readonly kind: "map" | "filter";
  /** The stage name given in the options, if any. */
  readonly name: string | undefined;
  /** Number of worker slots. */
  readonly concurrency: number;
  /** Functions run in sequence on one item inside one worker slot. */
  readonly fns: readonly TaskFn[];
  /** Retry policy with defaults filled in, if any. */
  readonly retry: RetryPolicy | undefined;
  /** Time limit per attempt, if any. */
  readonly timeoutMs: number | undefined;
  /** What to do with an item that failed for good. */
  readonly onError: OnError;
  /** Start-rate limit, if any. */
  readonly rateLimit: RateLimit | undefined;
}

/** The description of a `batch` stage, read by the scheduler. */
export interface BatchSpec {
  /** Always `"batch"`. */
  readonly kind: "batch";
  /** The stage name given in the options, if any. */
  readonly name: string | undefined;
  /** A batch is emitted as soon as it holds this many items. */
  readonly maxSize: number;
  /** A timed flush waits until the batch holds at least this many items. */
  readonly minSize: number;
  /** Flush a partial batch this long after its first item joined it. */
  readonly maxWaitMs: number | undefined;
}

/** The description of a `flatten` stage, read by the scheduler. */
export interface FlattenSpec {
  /** Always `"flatten"`. */
  readonly kind: "flatten";
  /** The stage name given in the options, if any. */
  readonly name: string | undefined;
}

/** The plain description of any stage. */
export type StageSpec = MapSpec | BatchSpec | FlattenSpec;

/**
 * One step of a pipeline, taking items of type `I` and emitting items of type
 * `O`. Build stages with {@linkcode map}, {@linkcode filter},
 * {@linkcode batch} and {@linkcode flatten}; a stage is immutable and may be
 * used in several pipelines.
 *
 * @example
 * ```ts
 * import { map, type Stage } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const double: Stage<number, number> = map((x: number) => x * 2);
 * assert.equal(double.spec.kind, "map");
 * ```
 */
export interface Stage<I, O> {
  /** What the stage does, as plain data. */
  readonly spec: StageSpec;
  /** Type-level only (never set): the item types flowing in and out. */
  readonly "~types"?: {
    readonly input: (item: I) => void;
    readonly output: O;
  };
}
