/**
 * A worker process of the cluster demo (`npm run demo:cluster`): serves the
 * demo's re-rank stage (`examples/hono/app.ts`) on the BullMQ queue
 * `demo-rerank` with `serve()` from `sluice/bullmq`. Each job is one batch of
 * queries: it waits the batch's simulated model latency (stopping at once when
 * the run cancels it), sorts each query's candidates by score and says which
 * process served it (`node#1234`, `bun#5678`, `deno#…`).
 *
 * Runs on Bun and Deno as is, on Node after bundling (`run.mjs` does both):
 *
 * ```sh
 * REDIS_URL=redis://127.0.0.1:6379 bun examples/cluster/worker.ts
 * REDIS_URL=redis://127.0.0.1:6379 deno run -A examples/cluster/worker.ts
 * ```
 *
 * Settings: `REDIS_URL` (required), `CONCURRENCY` (jobs at a time, default
 * 1, so two workers share the stage's two calls). Prints one JSON line
 * `{ "ready": "<runtime>#<pid>" }` once listening; stops on SIGINT/SIGTERM,
 * finishing the job it runs.
 *
 * @module
 */
import process from "node:process";
// In an application: `import { serve } from "sluice/bullmq"` (npm) or
// "@sluice/sluice/bullmq" (JSR).
import { serve } from "../../bullmq.ts";
import type { RerankJob, RerankReply } from "../hono/app.ts";

const g = globalThis as { Bun?: unknown; Deno?: unknown };
const runtime = g.Bun ? "bun" : g.Deno ? "deno" : "node";
const me = `${runtime}#${process.pid}`;
const url = process.env.REDIS_URL;
if (!url) {
  console.error("worker.ts: set REDIS_URL (redis://host:port)");
  process.exit(1);
}

const worker = serve(
  "demo-rerank",
  async (job: RerankJob, ctx): Promise<RerankReply> => {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, job.ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      }, { once: true });
    });
    return {
      lists: job.lists.map((list) =>
        [...list].sort((a, b) => b.score - a.score)
      ),
      servedBy: me,
    };
  },
  {
    connection: url,
    concurrency: Number(process.env.CONCURRENCY ?? 1),
    onError: (error) => console.error(`${me}: ${error.message}`),
  },
);
await worker.ready();
console.log(JSON.stringify({ ready: me }));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await worker.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
