// Per-task overhead of Pool.submit: 100,000 trivial async tasks at concurrency
// 16, all submitted at once and awaited with Promise.all, against p-queue
// (`queue.add`) and p-limit (`limit(fn, x)`), and against two floors measured
// in the same run:
// - the sequential loop `for (const x of items) out.push(await fn(x))` (the
//   baseline of the ratios);
// - `Promise.all(items.map(fn))`: every call at once, no limit (the cost of
//   one promise per task and of Promise.all itself).
//
// Run: RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/pool_bench.ts [rounds]
//      (interleaved rounds, medians and ratios), or
//      RUST_BACKTRACE=0 node_modules/.bin/deno bench -A bench/pool_bench.ts
import PQueue from "p-queue";
import pLimit from "p-limit";
import { Pool } from "../mod.ts";

const N = 100_000;
const CONCURRENCY = 16;
const GROUP = "pool: 100k tasks, concurrency 16";

const items: number[] = Array.from({ length: N }, (_, i) => i);
// deno-lint-ignore require-await
const fn = async (x: number): Promise<number> => x * 2;

/** Keeps the work observable (and catches a broken run). */
function check(out: number[]): void {
  if (out.length !== N || out[0] !== 0 || out[N - 1] !== 2 * (N - 1)) {
    throw new Error("wrong results");
  }
}

const cases: { name: string; fn: () => Promise<void> }[] = [
  {
    name: "floor: sequential loop",
    async fn() {
      const out: number[] = [];
      for (const x of items) out.push(await fn(x));
      check(out);
    },
  },
  {
    name: "floor: Promise.all, no limit",
    async fn() {
      check(await Promise.all(items.map(fn)));
    },
  },
  {
    name: "sluice Pool.submit",
    async fn() {
      const pool = new Pool({ concurrency: CONCURRENCY });
      check(await Promise.all(items.map((x) => pool.submit(fn, x))));
      await pool.close();
    },
  },
  {
    name: "p-queue add",
    async fn() {
      const queue = new PQueue({ concurrency: CONCURRENCY });
      check(await Promise.all(items.map((x) => queue.add(() => fn(x)))));
    },
  },
  {
    name: "p-limit",
    async fn() {
      const limit = pLimit(CONCURRENCY);
      check(await Promise.all(items.map((x) => limit(fn, x))));
    },
  },
];

for (const c of cases) {
  Deno.bench({ ...c, group: GROUP, baseline: c === cases[0] });
}

/**
 * Script mode: every case once per round, rounds interleaved (rotating who
 * runs first) so that JIT and GC state hit all cases alike; medians and
 * ratios to the sequential loop and to p-queue.
 */
async function interleaved(rounds: number, warmup = 5): Promise<void> {
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < warmup + rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length;
      const t0 = performance.now();
      await cases[i].fn();
      if (r >= warmup) times[i].push(performance.now() - t0);
    }
  }
  const med = times.map((ts) => ts.sort((a, b) => a - b)[ts.length >> 1]);
  const pq = cases.findIndex((c) => c.name === "p-queue add");
  console.log(`${GROUP}: medians of ${rounds} interleaved rounds`);
  cases.forEach((c, i) => {
    console.log(
      `${c.name.padEnd(30)} ${med[i].toFixed(2).padStart(8)} ms` +
        `   ${(med[i] * 1e6 / N).toFixed(0).padStart(5)} ns/task` +
        `   ×loop ${(med[i] / med[0]).toFixed(2)}` +
        `   ×p-queue ${(med[i] / med[pq]).toFixed(2)}`,
    );
  });
}

if (import.meta.main) await interleaved(Number(Deno.args[0] ?? 30));
