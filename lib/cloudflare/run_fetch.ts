import { show } from "../_validate.ts";
import { RUN_HEADER } from "./_protocol.ts";
import type { RunNamespace } from "./types.ts";

/**
 * Routes a Worker's request to the {@linkcode SluiceRun} object of run
 * `runId` (the object named `runId` in `namespace`), which answers by the
 * request's last path segment: `POST …/start`, `GET …/events` (SSE, resumed
 * with `Last-Event-ID`), `POST …/abort`, `GET …/status`. The response
 * (an event stream included) is the object's, passed on as it comes.
 *
 * @param namespace The Durable Object namespace binding (`env.SLUICE_RUNS`).
 * @param runId The run's id.
 * @param request The Worker's request.
 * @returns The object's response.
 * @throws {TypeError} When `runId` is not a non-empty string, or `namespace`
 * not a namespace binding.
 *
 * @example A route per run
 * ```ts
 * import { runFetch, type RunNamespace } from "sluice/cloudflare";
 * import assert from "node:assert/strict";
 *
 * const seen: string[] = [];
 * const runs: RunNamespace = { // stands for env.SLUICE_RUNS
 *   idFromName: (name) => name,
 *   get: (id) => ({
 *     fetch: (request) => {
 *       seen.push(`${id} ${request.headers.get("x-sluice-run")}`);
 *       return Promise.resolve(Response.json({ status: "running" }));
 *     },
 *   }),
 * };
 * const res = await runFetch(
 *   runs,
 *   "nightly",
 *   new Request("https://example.com/runs/nightly/status"),
 * );
 * assert.deepEqual(await res.json(), { status: "running" });
 * assert.deepEqual(seen, ["nightly nightly"]);
 * ```
 */
export function runFetch(
  namespace: RunNamespace,
  runId: string,
  request: Request,
): Promise<Response> {
  if (typeof runId !== "string" || runId === "") {
    throw new TypeError(
      `'runId' must be a non-empty string: current value is ${show(runId)}`,
    );
  }
  if (
    typeof namespace !== "object" || namespace === null ||
    typeof namespace.idFromName !== "function"
  ) {
    throw new TypeError(
      `'namespace' must be a Durable Object namespace binding (env.SLUICE_RUNS): current value is ${
        show(namespace)
      }`,
    );
  }
  const headers = new Headers(request.headers);
  headers.set(RUN_HEADER, runId);
  return namespace.get(namespace.idFromName(runId)).fetch(
    new Request(request, { headers }),
  );
}
