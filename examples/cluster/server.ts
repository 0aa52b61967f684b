/**
 * The SSE demo server of the cluster demo (`npm run demo:cluster`): the same
 * Hono app as `npm run demo` (`examples/hono/app.ts`), on Deno, with its
 * re-rank stage able to run on remote workers: it passes `remote()` of
 * `sluice/bullmq` as the app's `remoteRerank`, so a run asked with
 * `?rerank=remote` (the page's "re-rank on remote workers" switch) sends each
 * re-rank batch as a job on the queue `demo-rerank`, which `worker.ts`
 * processes serve.
 *
 * `run.mjs` starts it with `REDIS_URL`, `PORT` and `LATENCY_SCALE`; on its own:
 *
 * ```sh
 * REDIS_URL=redis://127.0.0.1:6379 deno run -A examples/cluster/server.ts
 * ```
 *
 * @module
 */
import { createApp } from "../hono/app.ts";
// In an application: `import { remote } from "sluice/bullmq"` (npm) or
// "@sluice/sluice/bullmq" (JSR).
import { remote } from "../../bullmq.ts";
import type { RerankJob, RerankReply } from "../hono/app.ts";

const env = (name: string) => Deno.env.get(name);
const connection = env("REDIS_URL");
if (!connection) {
  console.error("server.ts: set REDIS_URL (redis://host:port)");
  Deno.exit(1);
}
// One job per re-rank batch; the stage's own concurrency (2) bounds the jobs
// outstanding, its abort cancels them on the workers.
const rerank = remote<RerankJob, RerankReply>("demo-rerank", {
  connection,
  onError: (error) => console.error(`redis: ${error.message}`),
});

const app = createApp({
  page: await Deno.readTextFile(
    new URL("../hono/static/index.html", import.meta.url),
  ),
  dashboard: await Deno.readTextFile(
    new URL("../hono/static/sluice-dashboard.js", import.meta.url),
  ),
  latencyScale: Number(env("LATENCY_SCALE") ?? 1),
  remoteRerank: rerank,
  log: console.log,
});

const hostname = "127.0.0.1";
const server = Deno.serve({
  hostname,
  port: Number(env("PORT") ?? 8000),
  onListen: ({ port }) =>
    console.log(`sluice cluster demo: http://${hostname}:${port}/`),
}, app.fetch);

const stop = async () => {
  await server.shutdown();
  await rerank.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
