/**
 * The error a run rejects with when a stage fails an item for good
 * (`onError: "fail"`, the default). It names the stage and the item, and keeps
 * the original error as `cause`.
 *
 * @example Catching a stage failure
 * ```ts
 * import { map, pipeline, PipelineError } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = pipeline(map((x: number) => {
 *   if (x === 2) throw new Error("boom");
 *   return x;
 * }, { name: "check" }));
 * const error = await p.run([1, 2, 3]).collect().catch((e) => e);
 * assert(error instanceof PipelineError);
 * assert.equal(error.stage, "check");
 * assert.equal(error.index, 1);
 * assert.equal(error.item, 2);
 * assert.equal((error.cause as Error).message, "boom");
 * ```
 */
export class PipelineError extends Error {
  /** Name of the stage that failed. */
  readonly stage: string;
  /** Id of the item that failed (its input index unless `run({ id })` set one). */
  readonly itemId: unknown;
  /** Position in the input of the item (for a batch: of its first item). */
  readonly index: number;
  /** The value the stage received: the item, or the batch array. */
  readonly item: unknown;

  /**
   * Makes the error of a failed item.
   *
   * @param stage Name of the failing stage.
   * @param itemId Id of the failing item.
   * @param index Input position of the failing item.
   * @param item The value the stage received.
   * @param cause The error thrown by the stage function.
   */
  constructor(
    stage: string,
    itemId: unknown,
    index: number,
    item: unknown,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Stage "${stage}" failed on item ${String(itemId)}: ${reason}`, {
      cause,
    });
    this.name = "PipelineError";
    this.stage = stage;
    this.itemId = itemId;
    this.index = index;
    this.item = item;
  }
}

/**
 * The error of an attempt that ran longer than its `timeoutMs`.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const error = new TimeoutError("fetch took longer than 100 ms");
 * assert.equal(error.name, "TimeoutError");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Makes a timeout error.
   *
   * @param message What timed out.
   * @param options Standard error options (`cause`).
   */
  constructor(message = "The operation timed out", options?: ErrorOptions) {
    super(message, options);
    this.name = "TimeoutError";
  }
}

/**
 * The error of a `Batcher.process()` call refused because the queue holds
 * `maxQueueSize` items and `onFull` is `"reject"`.
 *
 * @example
 * ```ts
 * import { QueueFullError } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const error = new QueueFullError(100);
 * assert.equal(error.name, "QueueFullError");
 * assert.equal(error.maxQueueSize, 100);
 * ```
 */
export class QueueFullError extends Error {
  /** The `maxQueueSize` that was reached. */
  readonly maxQueueSize: number;

  /**
   * Makes a queue-full error.
   *
   * @param maxQueueSize The limit that was reached (a Batcher's
   *   `maxQueueSize`, a Pool's `maxQueued`).
   * @param options Standard error options (`cause`), and `message` to say
   *   more than the default.
   */
  constructor(
    maxQueueSize: number,
    options?: ErrorOptions & { message?: string },
  ) {
    super(
      options?.message ??
        `The queue is full (maxQueueSize: ${maxQueueSize}); the item was not queued`,
      options,
    );
    this.name = "QueueFullError";
    this.maxQueueSize = maxQueueSize;
  }
}

/**
 * The `DOMException` named `AbortError` that sluice uses as an abort reason
 * when the caller gave none (internal: not exported from mod.ts).
 */
export function abortError(message: string): DOMException {
  return new DOMException(message, "AbortError");
}
