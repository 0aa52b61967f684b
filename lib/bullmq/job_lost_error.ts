/**
 * The error a `remote` call rejects with when it cannot know its job's
 * outcome: Redis cannot be reached (within `connectTimeoutMs`, or the
 * connection drops while the call waits), or the job vanished from Redis (a
 * restart without persistence, or someone removed it). The job may still run
 * on a worker, so a retry (the stage's `retry`, with
 * `retryIf: (e) => e instanceof JobLostError`) may run it twice on workers;
 * the flow still takes one result.
 *
 * @example Retrying calls that lost Redis
 * ```ts
 * import { JobLostError } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const retryIf = (e: unknown) => e instanceof JobLostError;
 * const error = new JobLostError("lost the connection to Redis", { jobId: "j" });
 * assert.equal(error.name, "JobLostError");
 * assert(retryIf(error));
 * ```
 */
export class JobLostError extends Error {
  /** The job whose outcome is unknown, when it had an id yet. */
  readonly jobId: string | undefined;

  /**
   * Makes the error of a call that lost its job.
   *
   * @param message What was lost.
   * @param options The job id and the cause (a Redis client error).
   */
  constructor(message: string, options: { jobId?: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "JobLostError";
    this.jobId = options.jobId;
  }
}
