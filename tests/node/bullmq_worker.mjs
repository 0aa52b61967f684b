// A worker process for tests/node/bullmq.test.mjs, run by Node, Bun or Deno
// (`deno run -A`: no other flag; it imports the built package through
// tests/node_modules/sluice, and bullmq/ioredis from node_modules/):
//   <runtime> tests/node/bullmq_worker.mjs <redis url> <queue> <concurrency>
// Items are { n, ms?, fail? }: it waits `ms` (honouring ctx.signal), throws an
// error named `fail` when given, else returns { n: n * 2, pid }. It reports on
// stdout, one JSON line each: ready, start (itemId, jobId, delivery),
// aborted (itemId, reason), closed.
import { serve } from "sluice/bullmq";

const [url, queue, concurrency = "1"] = (globalThis.Deno?.args ??
  process.argv.slice(2));
const pid = globalThis.Deno?.pid ?? process.pid;
const runtime = globalThis.Bun ? "bun" : globalThis.Deno ? "deno" : "node";
const say = (event) => console.log(JSON.stringify({ pid, runtime, ...event }));

const worker = serve(queue, async (item, ctx) => {
  say({ event: "start", itemId: ctx.itemId, jobId: ctx.jobId, delivery: ctx.delivery });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, item.ms ?? 5);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      }, { once: true });
    });
  } catch (error) {
    say({ event: "aborted", itemId: ctx.itemId, reason: String(error?.message) });
    throw error;
  }
  if (item.fail) {
    const error = new Error(`item ${item.n} is bad`);
    error.name = item.fail;
    throw error;
  }
  return { n: item.n * 2, pid };
}, { connection: url, concurrency: Number(concurrency) });

await worker.ready();
say({ event: "ready" });

const stop = async () => {
  await worker.close();
  say({ event: "closed" });
  if (globalThis.Deno) Deno.exit(0);
};
if (globalThis.Deno) Deno.addSignalListener("SIGTERM", stop);
else process.once("SIGTERM", stop);
