// One attempt of a Pool task on the slow path (a retry, a timeout, a signal
// of its own): the call under its deadline, then the retry decision. The
// pool's or the task's own policy is chosen by `PoolCore`; the slot, the
// timing and the backoff are its business too.
import { Deadline, retryDelay } from "./_attempt.ts";
import { call, type Job, RUN, taskContext } from "./_pool_job.ts";
import type { RetryPolicy } from "./retry.ts";

/** No retry, and not an overload for the adaptive limit. */
export const FINAL = -1;
/** No retry (last attempt), but `retryIf` calls the error retryable. */
export const FINAL_RETRYABLE = -2;

/**
 * Calls `job` once, under a deadline of `timeoutMs` (none when undefined)
 * that its own signal (a `run()` task's) also aborts. Sets `job.ok` and
 * `job.value` (a call that outlived its deadline failed with the
 * `TimeoutError`, whatever it returned).
 *
 * @returns The attempt's `ctx.signal`.
 */
export async function attempt(
  job: Job,
  slot: AbortSignal,
  timeoutMs: number | undefined,
): Promise<AbortSignal> {
  let signal = slot;
  let deadline: Deadline | undefined;
  if (
    timeoutMs !== undefined || (job.kind === RUN && job.signal !== undefined)
  ) {
    deadline = job.deadline = new Deadline(slot, timeoutMs, "Pool task");
    signal = deadline.signal;
    if (job.signal?.aborted) deadline.abort(job.signal.reason);
  }
  let ok = false;
  let value: unknown;
  try {
    value = await call(job, signal);
    ok = true;
  } catch (error) {
    value = error;
  }
  if (deadline !== undefined) {
    job.deadline = undefined;
    if (deadline.end()) {
      ok = false;
      value = deadline.reason;
    }
  }
  job.ok = ok;
  job.value = value;
  return signal;
}

/**
 * After `job`'s attempt failed (its error in `job.value`): the delay before
 * its retry, or {@linkcode FINAL} / {@linkcode FINAL_RETRYABLE}. When
 * `retryIf` (or the jitter's `random()`) throws, its error becomes the
 * task's (`job.value`). The last attempt's error is asked of `retryIf` only
 * for an adaptive pool (`askLast`), as an overload signal; otherwise the
 * decision of `retryDelay` is reused.
 *
 * @param signal The attempt's `ctx.signal`.
 */
export function retryAfter(
  job: Job,
  signal: AbortSignal,
  retry: RetryPolicy | undefined,
  askLast: boolean,
): number {
  const error = job.value;
  const ctx = taskContext(job, signal);
  const delay = retryDelay(retry, job.attempt, error, ctx);
  if (typeof delay === "number") return delay;
  if (delay !== undefined) {
    job.value = delay.error;
    return FINAL;
  }
  if (!askLast || retry === undefined || job.attempt < retry.attempts) {
    return FINAL;
  }
  try {
    return retry.retryIf(error, ctx) ? FINAL_RETRYABLE : FINAL;
  } catch {
    return FINAL;
  }
}
