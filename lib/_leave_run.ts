// Leaving a run early, as an iterator's return() does: shared by Flow's
// iterator and Pool.map's.
import { abortError } from "./errors.ts";
import type { Scheduler } from "./_scheduler.ts";
import { DONE_RESULT } from "./_run.ts";

/**
 * The consumer leaves the run: stops it quietly (it settles without an
 * error) with an `AbortError` for every `ctx.signal` in flight, and resolves
 * once every call in flight has returned.
 */
export async function leaveRun(
  engine: Scheduler,
  message: string,
): Promise<IteratorReturnResult<undefined>> {
  engine.stop(abortError(message), true);
  await engine.settled();
  return DONE_RESULT;
}
