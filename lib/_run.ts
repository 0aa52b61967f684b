/**
 * What a run's parts share: its options, its states, and what a stage may ask
 * of the run that holds it (`RunHost`, which the scheduler implements).
 *
 * @module
 */

import type { OrderList } from "./_order_list.ts";
import type { RunStats } from "./_run_stats.ts";
import type { Token } from "./_token.ts";
import type { StageSpec } from "./stage.ts";
import type { FailureRecord } from "./stats.ts";

/** Options of one run, already validated by `Pipeline.run()`. */
export interface RunConfig {
  ordered: boolean;
  signal: AbortSignal | undefined;
  id: ((item: unknown, index: number) => unknown) | undefined;
  bufferSize: number;
  context: unknown;
  /** Where events are dispatched (the Flow). */
  target: EventTarget;
  /** Where `onError: "skip"` records go (the Flow's `failures`). */
  failures: FailureRecord[];
  progressIntervalMs: number;
  /**
   * Input order: a failure that stops the run waits for its turn, so every
   * result before it is delivered first (`Pool.map`). Reading stops at once.
   */
  failAtTurn?: boolean;
  /** Item tracking: transitions kept per item, finished items kept. */
  track?: { history: number; keep: number };
}

/** A stage of a pipeline with its resolved name. */
export interface NamedSpec {
  spec: StageSpec;
  name: string;
}

// The run's states: it moves from one to the next, never back.
/** Reading, working and delivering. */
export const RUNNING = 0;
/** Stopped (aborted, failed, or the consumer left): waiting for calls. */
export const STOPPING = 1;
/** Settled. */
export const DONE = 2;

/** What a stage may ask of the run that holds it. */
export interface RunHost {
  /** RUNNING, STOPPING or DONE. */
  readonly state: number;
  readonly config: RunConfig;
  readonly stats: RunStats;
  /** Input order: the order list (null while results are placed directly). */
  readonly order: OrderList | null;
  /** Moves `t` from its stage to the next one (or out, as a result). */
  forward(t: Token): void;
  /** `t` leaves the run without a result: filtered out, or skipped. */
  drop(t: Token, skipped?: boolean): void;
  /** A batch absorbed `t` (its weight went to the batch's `carrier`). */
  absorb(t: Token, carrier: Token): void;
  /** A flatten made `k` more tokens at stage `s`. */
  grow(s: number, k: number): void;
  /** Reads the source while the budget allows. */
  pump(): void;
  /**
   * The first stage's next item straight from a synchronous source, when the
   * budget allows (else undefined), carried by `spare` if given (a token that
   * has left the run; it goes to the spare list when nothing is read).
   */
  nextItem(spare?: Token): Token | undefined;
  /**
   * `t`, done at the last stage, leaves as a result placed straight into
   * `collect()`'s output. With `next`, `t` then carries the next item, as
   * `nextItem` reads it: true if it does.
   */
  place(t: Token, value: unknown, next: boolean): boolean;
  /** Stops the run. */
  stop(reason: unknown): void;
  /** `t` failed for good at `stage` and no `onError` rescued it. */
  fault(stage: string, t: Token, cause: unknown): void;
  /** A stage call began; the run settles only once none is in flight. */
  callStarted(): void;
  /** A stage call ended (its slot is free). */
  callEnded(): void;
  /** Stage `stage`'s concurrency changed: the budget follows it. */
  concurrencyChanged(
    stage: string,
    from: number,
    to: number,
    reason: string,
  ): void;
}

/** The result of an iterator that is done (shared, frozen). */
export const DONE_RESULT: IteratorReturnResult<undefined> =
  /* @__PURE__ */ Object.freeze({ done: true, value: undefined });

/** What the read-ahead limit needs of a stage. */
interface BudgetedStage {
  readonly kind: "map" | "filter" | "batch" | "flatten";
  readonly concurrency?: number;
  readonly maxSize?: number;
}

/**
 * The read-ahead limit: `bufferSize` plus what the stages can hold in work
 * now, each counted in source items (a token after a batch of 32 may stand
 * for 32).
 */
export function readAheadLimit(
  stages: readonly BudgetedStage[],
  bufferSize: number,
): number {
  let limit = bufferSize;
  let perToken = 1;
  for (const st of stages) {
    if (st.kind === "batch") {
      limit += st.maxSize! * perToken;
      perToken *= st.maxSize!;
    } else if (st.kind !== "flatten" && st.concurrency !== Infinity) {
      limit += st.concurrency! * perToken;
    }
  }
  return Math.max(limit, 1);
}
