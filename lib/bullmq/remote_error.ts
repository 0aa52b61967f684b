/**
 * The error a `remote` call rejects with when the worker's function threw (or
 * its job failed in BullMQ, e.g. it stalled too often). `name` and `message`
 * are the remote error's, so `retryIf`, `onError` and `flow.failures` see the
 * same error as in one process; `remoteStack` is the worker's stack trace and
 * `jobId` the BullMQ job.
 *
 * @example Telling a remote error apart
 * ```ts
 * import { RemoteError } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const error = new RemoteError("RangeError", "too big", { jobId: "run/map#1/7/1" });
 * assert(error instanceof RemoteError);
 * assert.equal(error.name, "RangeError");
 * assert.equal(error.message, "too big");
 * assert.equal(error.jobId, "run/map#1/7/1");
 * ```
 */
export class RemoteError extends Error {
  /** The BullMQ job id of the failed call. */
  readonly jobId: string;
  /** The worker's stack trace, when it had one. */
  readonly remoteStack: string | undefined;

  /**
   * Makes the error of a failed remote call.
   *
   * @param name The remote error's `name`.
   * @param message The remote error's `message`.
   * @param options The job id and the remote stack trace.
   */
  constructor(
    name: string,
    message: string,
    options: { jobId: string; remoteStack?: string },
  ) {
    super(message);
    this.name = name;
    this.jobId = options.jobId;
    this.remoteStack = options.remoteStack;
  }
}

/** The marker of a failure reason written by `serve`. */
const MARK = "sluice-error:";

/**
 * Encodes a worker's error as a BullMQ failure reason (BullMQ keeps only a
 * string): `sluice-error:{"name","message","stack"}`.
 */
export function encodeFailure(error: unknown): string {
  const e = error instanceof Error
    ? error
    : new Error(typeof error === "string" ? error : safeString(error));
  return MARK + JSON.stringify({
    name: String(e.name || "Error"),
    message: String(e.message),
    stack: typeof e.stack === "string" ? e.stack.slice(0, 4000) : undefined,
  });
}

/** The `RemoteError` of a failure reason (one of `serve`'s, or BullMQ's own). */
export function decodeFailure(reason: unknown, jobId: string): RemoteError {
  const text = typeof reason === "string" ? reason : String(reason);
  if (text.startsWith(MARK)) {
    try {
      const { name, message, stack } = JSON.parse(text.slice(MARK.length));
      return new RemoteError(name, message, { jobId, remoteStack: stack });
    } catch { /* not ours after all: below */ }
  }
  return new RemoteError("Error", text, { jobId });
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "a value that is not an Error";
  }
}
