// Job ids: `<runId>/<stage>/<itemId>/<attempt>`, each part URI-encoded, so
// that a restarted run finds its jobs (BullMQ refuses ids with ":" and ids
// that are integers; an encoded part has no "/" and no ":").
import { show } from "../_validate.ts";

/** The job id of one attempt of one item in one stage of a run. */
export function jobIdOf(
  runId: string,
  stage: string,
  itemId: unknown,
  attempt: number,
): string {
  if (
    typeof itemId !== "string" && typeof itemId !== "number" &&
    typeof itemId !== "bigint"
  ) {
    throw new TypeError(
      `'ctx.itemId' must be a string or a number to make a job id with 'runId': current value is ${
        show(itemId)
      } (give the run item ids with run(source, { id }))`,
    );
  }
  return [runId, stage, String(itemId), String(attempt)]
    .map(encodeURIComponent).join("/");
}
