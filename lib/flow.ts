import { abortError } from "./errors.ts";
import { type NamedSpec, Scheduler } from "./_scheduler.ts";
import { leaveRun } from "./_leave_run.ts";
import { specOf, type Stage } from "./stage.ts";
import type {
  FailureRecord,
  FlowStats,
  ItemRecord,
  ItemStatus,
} from "./stats.ts";
import type { Tracker } from "./_tracker.ts";
import type { Source } from "./types.ts";
import {
  assertDuration,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  show,
} from "./_validate.ts";
import { isSource } from "./_source.ts";

/** Default read-ahead budget of a run (`RunOptions.bufferSize`). */
export const DEFAULT_BUFFER_SIZE = 1024;
/** Default cadence of `"progress"` events (`RunOptions.progressIntervalMs`). */
export const DEFAULT_PROGRESS_INTERVAL_MS = 250;

/** The `detail` of the per-item events of a {@linkcode Flow}. */
export interface ItemEventDetail {
  /** The item's id. */
  readonly itemId: unknown;
  /** The item's input position (for a batch: of its first item). */
  readonly index: number;
  /** The stage the event happened in. */
  readonly stage: string;
  /** The worker slot. */
  readonly workerId: number;
  /** The attempt number, from 1. */
  readonly attempt: number;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
  /** The error (`"retrying"`, `"failed"`, `"skipped"`). */
  readonly error?: unknown;
  /**
   * How long the call took, in ms (`"completed"`, `"failed"`: its last
   * attempt; `"retrying"`: the attempt that failed).
   */
  readonly durationMs?: number;
  /**
   * In a multi-task stage, the function the event is about (its `name`, or
   * `task#<position>`): on every event with `retry.scope: "task"` (each
   * function its own attempts), and on `"failed"` always.
   */
  readonly task?: string;
}

/** The `detail` of a `"queued"` event: an item entered a stage. */
export interface QueuedEventDetail {
  /** The item's id. */
  readonly itemId: unknown;
  /** The item's input position (for a batch: of its first item). */
  readonly index: number;
  /** The stage it entered. */
  readonly stage: string;
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/** The `detail` of a `"concurrency"` event: a stage's limit changed. */
export interface ConcurrencyEventDetail {
  /** The stage. */
  readonly stage: string;
  /** The limit before. */
  readonly from: number;
  /** The limit now. */
  readonly to: number;
  /** `"set"` (`flow.setConcurrency`) or `"adaptive"`. */
  readonly reason: "set" | "adaptive";
  /** `Date.now()` when the event fired. */
  readonly timestamp: number;
}

/**
 * The options of {@linkcode Flow.addEventListener}: the DOM's
 * `AddEventListenerOptions`, written out so that a Node TypeScript project
 * without the DOM lib compiles against sluice's declarations.
 */
export interface FlowListenerOptions {
  /** Listen in the capture phase (no effect on a flow). */
  capture?: boolean;
  /** Remove the listener after its first call. */
  once?: boolean;
  /** The listener never calls `preventDefault()`. */
  passive?: boolean;
  /** Removes the listener when this signal aborts. */
  signal?: AbortSignal;
}

/**
 * A listener of any event of a {@linkcode Flow}: a function or an object with
 * `handleEvent` (the DOM's `EventListenerOrEventListenerObject`, written out).
 */
export type FlowListener =
  | ((event: Event) => void)
  | { handleEvent(event: Event): void };

/**
 * The events of a {@linkcode Flow}, each a `CustomEvent`: `"queued"` (an item
 * entered a stage, once per item per stage, whether it then waits or starts
 * at once), `"started"` (an attempt starts), `"completed"` (a stage call succeeded), `"retrying"` (an
 * attempt failed and will be retried), `"failed"` (an item failed for good, before
 * `onError` applies), `"skipped"` (`onError` skipped it), and `"progress"`
 * (`detail` is `stats()`, at most every `progressIntervalMs`, and once more
 * when the run settles), and `"concurrency"` (a stage's limit changed).
 */
export interface FlowEventMap {
  /** An item entered a stage. */
  queued: CustomEvent<QueuedEventDetail>;
  /** An attempt starts. */
  started: CustomEvent<ItemEventDetail>;
  /** A stage call succeeded. */
  completed: CustomEvent<ItemEventDetail>;
  /** An attempt failed and will be retried. */
  retrying: CustomEvent<ItemEventDetail>;
  /** An item failed for good (then `onError` applies). */
  failed: CustomEvent<ItemEventDetail>;
  /** An item was skipped by `onError`. */
  skipped: CustomEvent<ItemEventDetail>;
  /** The run's counters. */
  progress: CustomEvent<FlowStats>;
  /** A stage's concurrency changed (`flow.setConcurrency`, or adaptive). */
  concurrency: CustomEvent<ConcurrencyEventDetail>;
}

/** Options of one run, given to `Pipeline.run()`. */
export interface RunOptions<I> {
  /**
   * `"input"`: results in input order, each yielded as soon as it and every
   * earlier item are done (filtered items never hold anything back); batches
   * hold consecutive input items. `"completion"`: results as they complete;
   * batches form in arrival order.
   * @default {"input"}
   */
  order?: "input" | "completion";
  /** Cancels the run; the flow then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Gives each item its id (`ctx.itemId`, errors), called once per item as it is
   * read.
   * @default {(item, index) => index}
   */
  id?: (item: I, index: number) => unknown;
  /**
   * The read-ahead budget: items read from the source and not yet yielded (or
   * filtered out) never exceed `bufferSize` plus what the stages hold in work
   * (each stage's `concurrency`, and each forming batch's `maxSize`, counted
   * in source items). In input order the same budget bounds the reorder
   * window (results done but waiting for an earlier one): a slow head item
   * stops the source being read once the budget is spent. `collect()` of a run
   * through `map` stages only has no reorder window: each result goes to its
   * place in the output array as soon as it is done.
   * @default {1024}
   */
  bufferSize?: number;
  /** Side inputs for this run, passed to every call as `ctx.context`. */
  context?: unknown;
  /**
   * Cadence of `"progress"` events, while someone listens to them.
   * @default {250}
   */
  progressIntervalMs?: number;
  /**
   * Keep each item's status for `flow.item(id)` and `flow.items()`: `true`,
   * or `{ history, keep }`: transitions kept per item (default 10), and
   * finished items kept (default 1000; the oldest go first). Items still in
   * the run are always kept, and the read-ahead budget bounds them, so memory
   * stays bounded on an endless source. Ids should be unique: a repeated id
   * replaces the older record (from then on, both items report to the new one). Tracking costs a few map operations per item
   * and stage; without it, nothing.
   * @default {false}
   */
  track?: boolean | { history?: number; keep?: number };
}

/** What a flow runs: a pipeline's stages and their names (a `Pipeline`). */
export interface RunnableStages {
  /** The stages, in order. */
  readonly stages: readonly Stage<never, unknown>[];
  /** The stage names, one per stage. */
  readonly names: readonly string[];
}

/**
 * One run of a pipeline, returned by `pipeline.run()`: consume it with
 * `for await`, `collect()` or `readable` (one of them: a flow has one
 * consumer), cancel it with `abort()` or the run's `signal`.
 *
 * The run starts in a microtask after `run()` returns, so listeners added right
 * after `run()` see every event; it then reads the source as the read-ahead
 * budget allows, whether or not anyone consumes yet.
 *
 * Cancellation (`abort()`, the run's `signal`, leaving a `for await` loop,
 * `await using`) stops reading the source (its `return()` or `cancel()` runs),
 * aborts every in-flight `ctx.signal`, clears every timer, and settles the
 * flow once every in-flight call has returned. An aborted flow rejects with
 * the abort reason; leaving a loop early ends it quietly.
 *
 * @example Iterate, in input order, each result as early as order allows
 * ```ts
 * import { map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const flow = pipeline(map(async (x: number) => x + 1, { concurrency: 4 }))
 *   .run([1, 2, 3]);
 * const out: number[] = [];
 * for await (const x of flow) out.push(x);
 * assert.deepEqual(out, [2, 3, 4]);
 * ```
 *
 * @example Abort a run
 * ```ts
 * import { map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * let aborted = 0;
 * const flow = pipeline(map((_: number, ctx) =>
 *   new Promise((resolve) => {
 *     ctx.signal.addEventListener("abort", () => resolve(aborted++));
 *   }), { concurrency: 2 })).run([1, 2, 3]);
 * setTimeout(() => flow.abort(new Error("stop")), 10);
 * await assert.rejects(flow.collect(), { message: "stop" });
 * assert.equal(aborted, 2); // both in-flight calls saw the abort
 * ```
 */
export class Flow<O> extends EventTarget
  implements AsyncIterable<O>, AsyncDisposable {
  readonly #engine: Scheduler;
  readonly #specs: readonly NamedSpec[];
  #consumer: string | undefined;
  #readable: ReadableStream<O> | undefined;
  /** One record per item skipped with `onError: "skip"`. */
  readonly failures: FailureRecord[] = [];

  /**
   * Starts a run; `pipeline.run(source, options)` is the usual way in.
   *
   * @param pipeline The pipeline to run.
   * @param source The items: an `Iterable`, `AsyncIterable` or `ReadableStream`.
   * @param options Order, signal, ids, read-ahead budget, context.
   * @throws {TypeError} When `source` is not readable or an option has the wrong type.
   * @throws {RangeError} When `bufferSize` is not an integer `>= 0`.
   */
  constructor(
    pipeline: RunnableStages,
    source: Source<unknown>,
    options?: RunOptions<unknown>,
  ) {
    super();
    if (!isSource(source)) {
      throw new TypeError(
        `'source' must be an Iterable, an AsyncIterable or a ReadableStream: current value is ${
          source === null ? "null" : typeof source
        }`,
      );
    }
    assertOptions("options", options, "run()", [
      "order",
      "signal",
      "id",
      "bufferSize",
      "context",
      "progressIntervalMs",
      "track",
    ]);
    const {
      order = "input",
      signal,
      id,
      bufferSize = DEFAULT_BUFFER_SIZE,
      context,
      progressIntervalMs = DEFAULT_PROGRESS_INTERVAL_MS,
      track = false,
    } = options ?? {};
    assertOneOf("order", order, ["input", "completion"] as const);
    assertSignal(signal);
    if (id !== undefined) assertFunction("id", id);
    assertInteger("bufferSize", bufferSize, 0, true);
    assertDuration("progressIntervalMs", progressIntervalMs, {
      positive: true,
    });
    const specs: NamedSpec[] = pipeline.stages.map((stage, i) => ({
      spec: specOf(stage)!,
      name: pipeline.names[i],
    }));
    this.#specs = specs;
    this.#engine = new Scheduler(specs, source, {
      ordered: order === "input",
      signal,
      id,
      bufferSize,
      context,
      target: this,
      failures: this.failures,
      progressIntervalMs,
      track: readTrack(track),
    });
  }

  /**
   * Listens to an event of the run; see {@linkcode FlowEventMap}. Events are
   * dispatched only once a listener was added: without one they cost nothing.
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override addEventListener<K extends keyof FlowEventMap>(
    type: K,
    listener: (this: Flow<O>, event: FlowEventMap[K]) => void,
    options?: boolean | FlowListenerOptions,
  ): void;
  /**
   * Listens to any event (the generic `EventTarget` signature).
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override addEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | FlowListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | FlowListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    if (listener !== null) this.#engine.listen(type);
  }

  /**
   * Removes a listener added with `addEventListener`.
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override removeEventListener<K extends keyof FlowEventMap>(
    type: K,
    listener: (this: Flow<O>, event: FlowEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener (the generic `EventTarget` signature).
   *
   * @param type The event name.
   * @param listener The listener.
   * @param options The standard listener options.
   */
  override removeEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: FlowListener | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
  }

  #claim(how: string): void {
    if (this.#consumer !== undefined) {
      throw new TypeError(
        `This flow is already consumed by ${this.#consumer}: a flow has one consumer; call run() again for another`,
      );
    }
    this.#consumer = how;
  }

  /**
   * The results, one by one: in input order (each as soon as it and every
   * earlier item are done) or in completion order, as the run's `order` says.
   * Leaving the loop early cancels the run and waits until it has stopped.
   *
   * @returns An async iterator of the results.
   * @throws {TypeError} When the flow already has a consumer.
   */
  [Symbol.asyncIterator](): AsyncIterator<O> {
    this.#claim("a for await loop");
    const engine = this.#engine;
    return {
      next: () => engine.next() as Promise<IteratorResult<O>>,
      return: () => leaveRun(engine, "The consumer left the flow"),
    };
  }

  /**
   * Runs to the end and resolves with every result, in the run's order.
   * Through `map` stages only, each result is written to its place in the
   * output as soon as it is done, so a slow item delays no other item (no
   * reorder window; the read-ahead budget then bounds only the work in
   * flight).
   *
   * @returns The results.
   * @throws {TypeError} When the flow already has a consumer.
   *
   * @example
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const p = pipeline(map((s: string) => s.toUpperCase()));
   * assert.deepEqual(await p.run(["a", "b"]).collect(), ["A", "B"]);
   * ```
   */
  collect(): Promise<O[]> {
    this.#claim("collect()");
    return new Promise((resolve, reject) => {
      const results: O[] = [];
      this.#engine.collect(results, (failed, reason) => {
        if (failed) reject(reason);
        else resolve(results);
      });
    });
  }

  /**
   * The results as a `ReadableStream` (no read-ahead of its own: the run's
   * `bufferSize` is the only buffer). Cancelling the stream cancels the run.
   *
   * @example Piping results on
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const stream = pipeline(map((x: number) => x * 3)).run([1, 2]).readable;
   * const reader = stream.getReader();
   * assert.deepEqual(await reader.read(), { done: false, value: 3 });
   * assert.deepEqual(await reader.read(), { done: false, value: 6 });
   * assert.deepEqual(await reader.read(), { done: true, value: undefined });
   * ```
   */
  get readable(): ReadableStream<O> {
    if (this.#readable) return this.#readable;
    this.#claim("readable");
    const engine = this.#engine;
    this.#readable = new ReadableStream<O>({
      async pull(controller) {
        const r = await engine.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value as O);
      },
      async cancel(reason) {
        engine.stop(reason ?? abortError("The stream was cancelled"), true);
        await engine.settled();
      },
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /**
   * Cancels the run. The flow rejects with `reason` (by default a
   * `DOMException` named `AbortError`) once every in-flight call has returned.
   * Does nothing when the run has already settled.
   *
   * @param reason The abort reason.
   * @returns A promise that resolves once the run has stopped.
   */
  abort(reason?: unknown): Promise<void> {
    this.#engine.stop(
      reason === undefined ? abortError("The flow was aborted") : reason,
    );
    return this.#engine.settled();
  }

  /**
   * Cancels the run if it is still going and waits until it has stopped: what
   * `await using flow = p.run(...)` calls at the end of the scope.
   *
   * @returns A promise that resolves once the run has stopped.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.#engine.stop(abortError("The flow was disposed"), true);
    return this.#engine.settled();
  }

  /**
   * A snapshot of the run's counters.
   *
   * @returns Items in and out, filtered, calls in flight, and per-stage counters.
   *
   * @example
   * ```ts
   * import { filter, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const flow = pipeline(filter((x: number) => x > 1)).run([1, 2, 3]);
   * await flow.collect();
   * const stats = flow.stats();
   * assert.equal(stats.itemsIn, 3);
   * assert.equal(stats.itemsOut, 2);
   * assert.equal(stats.filtered, 1);
   * ```
   */
  stats(): FlowStats {
    return this.#engine.snapshot();
  }

  /**
   * Changes the concurrency of a running map or filter stage. Raising it
   * starts waiting items at once; lowering it interrupts no call: the stage
   * starts none until fewer than `n` run. The read-ahead budget follows, and
   * a `"concurrency"` event fires.
   *
   * @param stage The stage's name (`stats().stages[i].name`).
   * @param n The new number of worker slots: a positive integer or `Infinity`.
   * @throws {RangeError} When no map or filter stage has that name, or `n` is out of range.
   * @throws {TypeError} When the stage is adaptive (`concurrency: { adaptive }`), or `n` is not a number.
   *
   * @example
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const flow = pipeline(map(async (x: number) => x, { name: "fetch" }))
   *   .run([1, 2, 3, 4]);
   * flow.setConcurrency("fetch", 4);
   * assert.deepEqual(await flow.collect(), [1, 2, 3, 4]);
   * assert.equal(flow.stats().stages[0].concurrency, 4);
   * ```
   */
  setConcurrency(stage: string, n: number): void {
    const at = this.#specs.findIndex((x) => x.name === stage);
    const spec = this.#specs[at]?.spec;
    if (spec === undefined || (spec.kind !== "map" && spec.kind !== "filter")) {
      const names = this.#specs
        .filter((x) => x.spec.kind === "map" || x.spec.kind === "filter")
        .map((x) => JSON.stringify(x.name));
      throw new RangeError(
        `'stage' must name a map or filter stage of this flow (${
          names.join(", ") || "none"
        }): current value is ${show(stage)}${
          spec === undefined ? "" : `, a ${spec.kind} stage`
        }`,
      );
    }
    if (spec.adaptive !== undefined) {
      throw new TypeError(
        `Stage ${
          JSON.stringify(stage)
        } finds its own concurrency ({ adaptive }): it cannot be set`,
      );
    }
    assertInteger("concurrency", n, 1, true);
    this.#engine.setConcurrency(at, n);
  }

  /**
   * What became of an item: its status, stage, attempts, last error and last
   * transitions. Needs `run(source, { track: true })`.
   *
   * @param id The item's id (`run(source, { id })`, or its index).
   * @returns Its record (a copy), or undefined when unknown (never read, or a
   *   finished item beyond `track.keep`).
   * @throws {TypeError} When the run does not track items.
   *
   * @example
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const flow = pipeline(map((x: number) => x * 2, { name: "double" }))
   *   .run([1, 2, 3], { track: true });
   * await flow.collect();
   * const item = flow.item(1)!;
   * assert.equal(item.status, "done");
   * assert.deepEqual(item.history.map((h) => h.status), [
   *   "queued",
   *   "running",
   *   "done",
   * ]);
   * ```
   */
  item(id: unknown): ItemRecord | undefined {
    return this.#tracker("item").item(id);
  }

  /**
   * The tracked items (those still in the run, then the finished ones kept),
   * optionally only those of some statuses. Needs `run(source, { track })`.
   *
   * @param filter `status`: one status or several.
   * @returns The matching records (copies).
   * @throws {TypeError} When the run does not track items, or a status is unknown.
   *
   * @example
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const flow = pipeline(map((x: number) => {
   *   if (x === 2) throw new Error("no 2");
   *   return x;
   * }, { onError: "skip" })).run([1, 2, 3], { track: true });
   * await flow.collect();
   * const skipped = [...flow.items({ status: "skipped" })];
   * assert.deepEqual(skipped.map((r) => r.id), [1]);
   * assert.equal((skipped[0].error as Error).message, "no 2");
   * ```
   */
  items(
    filter?: { status?: ItemStatus | readonly ItemStatus[] },
  ): IterableIterator<ItemRecord> {
    const tracker = this.#tracker("items");
    assertOptions("filter", filter, "items()", ["status"]);
    const status = filter?.status;
    if (status === undefined) return tracker.items(undefined);
    const list = typeof status === "string" ? [status] : status;
    if (!Array.isArray(list)) {
      throw new TypeError(
        `'status' must be an item status or an array of them: current value is ${
          show(status)
        }`,
      );
    }
    for (const s of list) assertOneOf("status", s, ITEM_STATUSES);
    return tracker.items(new Set(list));
  }

  #tracker(method: string): Tracker {
    const tracker = this.#engine.tracker;
    if (tracker === null) {
      throw new TypeError(
        `flow.${method}() needs item tracking: run the pipeline with { track: true }`,
      );
    }
    return tracker;
  }
}

const ITEM_STATUSES = [
  "queued",
  "running",
  "retrying",
  "done",
  "failed",
  "skipped",
  "filtered",
  "cancelled",
] as const;

/** Reads the `track` run option. */
function readTrack(
  track: unknown,
): { history: number; keep: number } | undefined {
  if (track === false) return undefined;
  if (track === true) return { history: 10, keep: 1000 };
  if (typeof track !== "object" || track === null) {
    throw new TypeError(
      `'track' must be a boolean or { history, keep }: current value is ${
        show(track)
      }`,
    );
  }
  assertOptions("track", track, "track", ["history", "keep"]);
  const { history = 10, keep = 1000 } = track as Record<string, unknown>;
  assertInteger("track.history", history, 1);
  assertInteger("track.keep", keep, 0);
  return { history, keep };
}
