/**
 * Remote stages on BullMQ and Redis: the same pipeline across many processes
 * and machines. `serve(name, fn, options)` runs `fn` for the jobs of a queue
 * in any number of worker processes; `remote(name, options)` is a stage
 * function whose calls become jobs on that queue. The pipeline keeps its
 * ordering, batching, backpressure (the stage's `concurrency` bounds the jobs
 * outstanding), retries, abort and SSE.
 *
 * Guarantees: at least once to the workers (a worker that dies mid-job, even
 * `kill -9`, loses nothing: its job is delivered again within about 10 s by
 * default), exactly once into the flow (one result per item). With a
 * `runId`, a run started again after a crash takes the results it already
 * has instead of running those items again.
 *
 * Needs the `bullmq` and `ioredis` packages (optional peer dependencies of
 * the npm package; on Deno, `npm:bullmq` and `npm:ioredis`), and a Redis
 * server. Runs on Node, Bun and Deno.
 *
 * @example A worker and a pipeline (runs against `REDIS_URL` when it is set)
 * ```ts
 * import { map, pipeline } from "sluice";
 * import { remote, serve } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const connection = Deno.env.get("REDIS_URL");
 * if (connection) {
 *   // in any number of worker processes
 *   const worker = serve("square", (n: number) => n * n, { connection });
 *   // in the process that runs the pipeline
 *   const square = remote<number, number>("square", { connection });
 *   const p = pipeline(map(square, { concurrency: 16 }));
 *   assert.deepEqual(await p.run([1, 2, 3]).collect(), [1, 4, 9]);
 *   await square.close();
 *   await worker.close();
 * }
 * ```
 *
 * @module
 */

export { type Codec, jsonCodec } from "./lib/bullmq/codec.ts";
export type {
  RedisConnection,
  RedisConnectionOptions,
} from "./lib/bullmq/_connection.ts";
export { JobLostError } from "./lib/bullmq/job_lost_error.ts";
export {
  type Keep,
  remote,
  type RemoteOptions,
  type RemoteRetention,
  type RemoteStage,
} from "./lib/bullmq/remote.ts";
export { RemoteError } from "./lib/bullmq/remote_error.ts";
export {
  serve,
  type ServeCloseOptions,
  type ServeContext,
  type ServeOptions,
  type Server,
} from "./lib/bullmq/serve.ts";
