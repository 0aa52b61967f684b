// Events, stats and a live dashboard: `deno run -A examples/monitoring.ts`
// (`compact`, `detailed` or `full` as an argument: the level; `full` by
// default). On a terminal the dashboard redraws in place; piped, it prints
// one summary line at the end.
import {
  batch,
  dashboard,
  type DashboardLevel,
  type DashboardOptions,
  map,
  pipeline,
} from "../mod.ts";
import { terminalWidth, writeStdout } from "./_terminal.ts";

/** Where the dashboard goes (by default: stdout, as a terminal or not). */
export type Display = Pick<DashboardOptions, "write" | "isTTY" | "width">;

export async function main(
  log: (line: string) => void = console.log,
  level: DashboardLevel = "full",
  display?: Display,
): Promise<{ retries: number; completed: number; p95: number }> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let tries = 0;
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(10 + (x % 5) * 5);
      if (x === 3 && tries++ === 0) throw new Error("transient");
      return x * 2;
    }, { name: "fetch", concurrency: 4, retry: { attempts: 2, delayMs: 5 } }),
    map((x: number) => {
      if (x % 18 === 8) throw new Error(`checksum mismatch for ${x}`);
      return x;
    }, { name: "validate", onError: "skip" }),
    batch({ maxSize: 5, maxWaitMs: 30, name: "group" }),
    map(async (xs: number[]) => {
      await sleep(25);
      return xs;
    }, { name: "store", concurrency: 2 }),
  ).run(Array.from({ length: 40 }, (_, i) => i));

  // Lines printed while a dashboard redraws would break it: kept for later.
  const later: string[] = [];
  let retries = 0;
  flow.addEventListener("retrying", (e) => {
    retries++;
    later.push(
      `retrying item ${e.detail.index} (attempt ${e.detail.attempt} failed)`,
    );
  });
  const isTTY = display?.isTTY ?? false;
  using _dash = dashboard(flow, {
    write: display?.write ?? ((text) => log(text.replace(/\n$/, ""))),
    isTTY,
    width: display?.width ?? 80,
    level,
    total: 40,
    label: "fetch",
    intervalMs: 100,
  });
  await flow.collect();
  for (const line of later) log(line);
  const fetch = flow.stats().stages[0];
  log(
    `p50 ${fetch.latency.p50.toFixed(1)} ms, p95 ${
      fetch.latency.p95.toFixed(1)
    } ms, queue wait p95 ${fetch.queueWait.p95.toFixed(1)} ms`,
  );
  return { retries, completed: fetch.completed, p95: fetch.latency.p95 };
}

if (import.meta.main) {
  const level = (Deno.args[0] ?? "full") as DashboardLevel;
  const isTTY = Deno.stdout.isTerminal();
  await main(console.log, level, {
    write: writeStdout,
    isTTY,
    width: isTTY ? terminalWidth() : 80,
  });
}
