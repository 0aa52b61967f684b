/**
 * Remote stages on Cloudflare Queues, with results collected by a Durable
 * Object: a run that outgrows one Worker invocation spreads a stage over the
 * queue's consumers and still streams its results over SSE in input order.
 * The same shape as `sluice/bullmq` (a pipeline moves between the two by
 * changing one import): `remote(name, options)` is a stage function whose
 * calls become queue messages; `consume(tasks)` is the `queue()` handler
 * that runs them; the {@linkcode SluiceRun} Durable Object collects the
 * outcomes, can host the run itself, and streams it (`toSSE`, resumed with
 * `Last-Event-ID`).
 *
 * Guarantees: at least once to the tasks (a message is acknowledged only
 * once its result is stored), exactly once into the flow (one result per
 * item, however many deliveries). A message that fails on every delivery
 * and goes to the dead-letter queue fails its item with a
 * {@linkcode DeadLetterError}, for the stage's `onError`. Web standards and
 * Workers bindings only: no `nodejs_compat`, nothing at module scope.
 *
 * @example A Worker (needs workerd: see examples/cloudflare/)
 * ```ts ignore
 * import { map, pipeline } from "sluice";
 * import { consume, remote, runFetch, SluiceRun } from "sluice/cloudflare";
 *
 * export class Runs extends SluiceRun<Env> {
 *   override start(input: unknown) {
 *     const rerank = remote("rerank", { queue: this.env.SLUICE_QUEUE, results: this });
 *     return pipeline(map(rerank, { concurrency: 32 })).run(input as string[]);
 *   }
 * }
 * export default {
 *   fetch: (request: Request, env: Env) =>
 *     runFetch(env.SLUICE_RUNS, new URL(request.url).pathname.split("/")[2], request),
 *   queue: consume({ rerank: (text: string) => text.length }, {
 *     deadLetterQueue: "sluice-dlq",
 *   }),
 * };
 * ```
 *
 * @module
 */

export {
  consume,
  type ConsumeContext,
  type ConsumeOptions,
  type ConsumeTask,
  deadLetters,
  type QueueHandler,
} from "./lib/cloudflare/consume.ts";
export { DeadLetterError } from "./lib/cloudflare/dead_letter_error.ts";
export {
  remote,
  type RemoteOptions,
  type RemoteStage,
} from "./lib/cloudflare/remote.ts";
export { runFetch } from "./lib/cloudflare/run_fetch.ts";
export {
  type HostedRun,
  type RunStatus,
  SluiceRun,
} from "./lib/cloudflare/sluice_run.ts";
export type { TaskContext } from "./lib/types.ts";
export type {
  QueueBatch,
  QueueMessage,
  QueueProducer,
  RunNamespace,
  RunObjectState,
  RunStorage,
  RunStub,
} from "./lib/cloudflare/types.ts";
