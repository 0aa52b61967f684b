/**
 * The error a {@linkcode remote} call rejects with when its queue message
 * failed for good: the consumer's task threw on every delivery, up to the
 * queue's `max_retries`, and the queue moved the message to its dead-letter
 * queue, whose consumer reported it. The stage's `retry` and `onError` see it
 * like any other error (`onError: "skip"` records it in `flow.failures`).
 *
 * @example What a dead-lettered call's error says
 * ```ts
 * import { DeadLetterError } from "sluice/cloudflare";
 * import assert from "node:assert/strict";
 *
 * const error = new DeadLetterError({
 *   runId: "nightly",
 *   itemId: "7",
 *   task: "rerank",
 *   queue: "sluice-dlq",
 *   attempts: 3,
 *   lastError: { name: "RangeError", message: "too long" },
 * });
 * assert.equal(error.name, "DeadLetterError");
 * assert.equal(
 *   error.message,
 *   'item 7 of run "nightly" failed for good in task "rerank": moved to the dead-letter queue "sluice-dlq" after 3 attempts; last error: RangeError: too long',
 * );
 * ```
 */
export class DeadLetterError extends Error {
  /** The run's id. */
  readonly runId: string;
  /** The item's id (as a string). */
  readonly itemId: string;
  /** The task's name. */
  readonly task: string;
  /** The dead-letter queue that received the message. */
  readonly queue: string;
  /** How many deliveries failed (0 when unknown). */
  readonly attempts: number;
  /** The error of the last failed attempt, when the consumer reported one. */
  readonly lastError: { name: string; message: string } | undefined;

  /**
   * Makes the error of a dead-lettered call.
   *
   * @param details Where it failed, how many times, and the last error.
   */
  constructor(details: {
    runId: string;
    itemId: string;
    task: string;
    queue: string;
    attempts: number;
    lastError?: { name: string; message: string };
  }) {
    const { runId, itemId, task, queue, attempts, lastError } = details;
    super(
      `item ${itemId} of run ${JSON.stringify(runId)} failed for good in task ${
        JSON.stringify(task)
      }: moved to the dead-letter queue ${JSON.stringify(queue)}${
        attempts ? ` after ${attempts} attempt${attempts === 1 ? "" : "s"}` : ""
      }; last error: ${
        lastError ? `${lastError.name}: ${lastError.message}` : "unknown"
      }`,
      { cause: lastError },
    );
    this.name = "DeadLetterError";
    this.runId = runId;
    this.itemId = itemId;
    this.task = task;
    this.queue = queue;
    this.attempts = attempts;
    this.lastError = lastError;
  }
}
