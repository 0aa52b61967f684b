import type { AdaptiveOptions } from "./_adaptive_limit.ts";
import type { RetryPolicy } from "./retry.ts";
import type { OnError, RateLimit, TaskContext } from "./types.ts";

/** A stage function: receives the item and the task context. */
// deno-lint-ignore no-explicit-any
export type TaskFn = (item: any, ctx: TaskContext) => unknown;

// The descriptions below are the engine's: not exported from mod.ts.

/** The description of a `map` or `filter` stage, read by the scheduler. */
export interface MapSpec {
  /** `"filter"` stages drop the items their function answers falsy for. */
  readonly kind: "map" | "filter";
  /** The stage name given in the options, if any. */
  readonly name: string | undefined;
  /** Number of worker slots (with `adaptive`: the initial limit). */
  readonly concurrency: number;
  /** The limits of an adaptive concurrency, if any. */
  readonly adaptive: AdaptiveOptions | undefined;
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
  /** Per-key order: the key of an item, if any. */
  readonly key: ((item: unknown) => unknown) | undefined;
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
 * assert.equal(double.kind, "map");
 * ```
 */
export interface Stage<I, O> {
  /** What the stage does. */
  readonly kind: "map" | "filter" | "batch" | "flatten";
  /** The `name` option, if given (a pipeline names the others `<kind>#<n>`). */
  readonly name: string | undefined;
  /** Type-level only (never set): the item types flowing in and out. */
  readonly "~types"?: {
    readonly input: (item: I) => void;
    readonly output: O;
  };
}

/** A stage as the factories make it: with its description for the engine. */
interface StageWithSpec extends Stage<never, unknown> {
  readonly spec: StageSpec;
}

const KINDS: readonly string[] = ["map", "filter", "batch", "flatten"];

/** The stage a factory returns for `spec` (frozen, like its description). */
export function makeStage<I, O>(spec: StageSpec): Stage<I, O> {
  const stage: StageWithSpec = {
    kind: spec.kind,
    name: spec.name,
    spec: Object.freeze(spec),
  };
  return Object.freeze(stage) as Stage<I, O>;
}

/** The description of a stage made by a factory; undefined for anything else. */
export function specOf(stage: unknown): StageSpec | undefined {
  const spec = (stage as Partial<StageWithSpec> | null | undefined)?.spec;
  return spec !== undefined && KINDS.includes(spec.kind) ? spec : undefined;
}
