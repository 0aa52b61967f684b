// Events, stats and a progress line: `deno run -A examples/monitoring.ts`
import { formatProgress, map, pipeline } from "../mod.ts";

export async function main(
  log: (line: string) => void = console.log,
): Promise<{ retries: number; completed: number; p95: number }> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let tries = 0;
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(10 + (x % 5) * 5);
      if (x === 3 && tries++ === 0) throw new Error("transient");
      return x * 2;
    }, { name: "fetch", concurrency: 4, retry: { attempts: 2, delayMs: 5 } }),
  ).run(Array.from({ length: 40 }, (_, i) => i), { progressIntervalMs: 50 });

  let retries = 0;
  flow.addEventListener("retrying", (e) => {
    retries++;
    log(`retrying item ${e.detail.index} (attempt ${e.detail.attempt} failed)`);
  });
  flow.addEventListener("progress", (e) => {
    log(formatProgress(e.detail, { total: 40 }));
  });
  await flow.collect();
  const fetch = flow.stats().stages[0];
  log(
    `p50 ${fetch.latency.p50.toFixed(1)} ms, p95 ${
      fetch.latency.p95.toFixed(1)
    } ms, queue wait p95 ${fetch.queueWait.p95.toFixed(1)} ms`,
  );
  return { retries, completed: fetch.completed, p95: fetch.latency.p95 };
}

if (import.meta.main) await main();
