import type { LimitChange } from "./types.ts";

// What a run reports: the public types of `Flow.stats()` and `flow.failures`.
// Types only, so every part of the engine can import them without a cycle.

/** One item that left a run through `onError: "skip"`. */
export interface FailureRecord {
  /** The item's id. */
  readonly itemId: unknown;
  /** The item's input position (for a batch: of its first item). */
  readonly index: number;
  /** The stage that failed it. */
  readonly stage: string;
  /** The value the stage received (the batch array, on a batch stage). */
  readonly item: unknown;
  /** The last error. */
  readonly error: unknown;
  /** How many attempts were made. */
  readonly attempts: number;
}

/** Latency figures in milliseconds, from a bounded-memory histogram. */
export interface LatencyStats {
  /** Number of measured values (calls are sampled when they are very fast). */
  readonly count: number;
  /** Mean. */
  readonly avg: number;
  /** Smallest measured value. */
  readonly min: number;
  /** Median (within about 2 % of the true value). */
  readonly p50: number;
  /** 95th percentile (within about 2 %). */
  readonly p95: number;
  /** 99th percentile (within about 2 %). */
  readonly p99: number;
  /** Largest measured value. */
  readonly max: number;
}

/** The state of one worker slot, in {@linkcode StageStats}. */
export interface WorkerState {
  /** The slot's id, `ctx.workerId`. */
  readonly workerId: number;
  /** `"busy"` while a call runs (or waits for the rate limit), else `"idle"`. */
  readonly state: "idle" | "busy";
  /** Id of the item being worked on, when busy. */
  readonly itemId?: unknown;
  /** Input position of the item being worked on, when busy. */
  readonly index?: number;
  /**
   * `Date.now()`-based time when the current call started: present when the
   * call is timed (every call once a stage's calls average over 0.1 ms; the
   * first 16 and one in 1,024 otherwise, where "busy since" is a matter of
   * microseconds).
   */
  readonly since?: number;
}

/** The state of an adaptive concurrency limit, in `stats()`. */
export interface AdaptiveStats {
  /** The lowest limit allowed. */
  readonly min: number;
  /** The highest limit allowed. */
  readonly max: number;
  /** The limit now (also the stage's `concurrency`). */
  readonly limit: number;
  /** Its last changes (at most 64), oldest first. */
  readonly history: readonly LimitChange[];
}

/** Counters of one stage, in {@linkcode FlowStats}. */
export interface StageStats {
  /** Stage name. */
  readonly name: string;
  /** `"map"`, `"filter"`, `"batch"` or `"flatten"`. */
  readonly kind: "map" | "filter" | "batch" | "flatten";
  /**
   * Worker slots now (0 for batch and flatten, which do no work of their
   * own); it follows `flow.setConcurrency` and an adaptive limit.
   */
  readonly concurrency: number;
  /** Items waiting for a worker (for a batch: items in the forming batch). */
  readonly queued: number;
  /** Calls running now. */
  readonly inFlight: number;
  /** Worker slots taken now (running, or waiting for the rate limit). */
  readonly busy: number;
  /** Items waiting out a retry backoff (they hold no worker slot). */
  readonly backingOff: number;
  /** Successful calls (for a batch: batches emitted; for flatten: items expanded). */
  readonly completed: number;
  /** Items that failed for good here (whatever `onError` then did). */
  readonly failed: number;
  /** Items skipped here by `onError`. */
  readonly skipped: number;
  /** Retries (attempts after the first). */
  readonly retried: number;
  /** Time per successful call (processing). */
  readonly latency: LatencyStats;
  /** Time from reaching the stage to a worker starting on it. */
  readonly queueWait: LatencyStats;
  /** Completed calls per second since the run started. */
  readonly throughput: number;
  /** One entry per worker slot used so far (AntFlow's worker states). */
  readonly workers: readonly WorkerState[];
  /** With `concurrency: { adaptive }`: the limit and how it moved. */
  readonly adaptive?: AdaptiveStats;
}

/**
 * A snapshot of a run, from `Flow.stats()`. Item counts are in source
 * items (a batch of 32 counts 32; an element of a flattened item counts its
 * share), so at every moment
 * `itemsIn === itemsOut + skipped + filtered + cancelled + inFlight`.
 */
export interface FlowStats {
  /** Milliseconds since `run()`. */
  readonly elapsedMs: number;
  /** Items read from the source. */
  readonly itemsIn: number;
  /** Items whose results the consumer has taken. */
  readonly itemsOut: number;
  /** Items that failed for good (skipped, substituted, or failing the run). */
  readonly failed: number;
  /** Items skipped by `onError` (one `flow.failures` record each, in source items). */
  readonly skipped: number;
  /** Items dropped by `filter` (or flattened to nothing). */
  readonly filtered: number;
  /** Items dropped because the run was cancelled or failed. */
  readonly cancelled: number;
  /** Items read and not yet out, skipped, filtered or cancelled. */
  readonly inFlight: number;
  /** Values yielded to the consumer (a batch is one value). */
  readonly results: number;
  /** Stage calls running now, all stages together. */
  readonly running: number;
  /** Whether the run has settled. */
  readonly done: boolean;
  /** Time from reading an item to the consumer taking its result. */
  readonly latency: LatencyStats;
  /** Per-stage counters, in pipeline order. */
  readonly stages: readonly StageStats[];
}

/**
 * Where an item is, in `flow.item(id)` (with `run(source, { track })`):
 * `"queued"` (entered a stage, waiting for a worker or a batch),
 * `"running"` (a call on it runs), `"retrying"` (waiting out a backoff),
 * `"done"` (its result left the last stage), `"failed"` (failed for good:
 * `onError` decides next), `"skipped"` (by `onError`), `"filtered"` (by a
 * filter, or flattened to nothing), `"cancelled"` (the run stopped first).
 */
export type ItemStatus =
  | "queued"
  | "running"
  | "retrying"
  | "done"
  | "failed"
  | "skipped"
  | "filtered"
  | "cancelled";

/** One step of an item's life, in {@linkcode ItemRecord.history}. */
export interface ItemTransition {
  /** The status it moved to. */
  readonly status: ItemStatus;
  /** The stage where it happened. */
  readonly stage: string;
  /** `Date.now()` when it happened. */
  readonly at: number;
  /** The error (`"retrying"`, `"failed"`, `"skipped"`). */
  readonly error?: unknown;
}

/** What became of one item: `flow.item(id)`, `flow.items()`. */
export interface ItemRecord {
  /** The item's id (`run(source, { id })`, or its index). */
  readonly id: unknown;
  /** Its input position. */
  readonly index: number;
  /** Where it is now. */
  readonly status: ItemStatus;
  /** The stage of its last transition. */
  readonly stage: string;
  /** Attempts made at that stage (0 before its first call there). */
  readonly attempts: number;
  /** The last error it met, if any (kept after a successful retry). */
  readonly error?: unknown;
  /** Its last transitions, oldest first (`track: { history }` of them). */
  readonly history: readonly ItemTransition[];
}
