// Batcher throughput: 100,000 concurrent `process()` calls (one synchronous
// loop, then `Promise.all`), a batch function that echoes its items, batches
// of 100, against DataLoader (`cache: false`, `maxBatchSize: 100`: the same
// coalescing, no memoization) measured in the same run (the baseline).
//
// DataLoader dispatches every batch at once, so the like-for-like case is
// `concurrency: Infinity`; `concurrency: 4` shows the cost of the slot limit.
//
// Both keep 100,000 promises pending at once, so most of the time is garbage
// collection, and V8's choices (young-generation size, which allocation sites
// it pretenures) depend on the heap's history: a case's median moves by up to
// 2× from one run to the next, for DataLoader as for sluice. Compare ratios
// over several runs, not one.
//
// Run: RUST_BACKTRACE=0 node_modules/.bin/deno bench -A bench/batcher_bench.ts
// or, interleaved rounds with medians and ratios (the reported figures):
//      RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/batcher_bench.ts [rounds]
// Target: sluice at least DataLoader's throughput (ratio ≤ 1.00).
import DataLoader from "dataloader";
import { Batcher } from "../mod.ts";

const N = 100_000;
const MAX_SIZE = 100;
const GROUP = "batcher: 100k concurrent calls, batches of 100";

const items: number[] = Array.from({ length: N }, (_, i) => i);
// deno-lint-ignore require-await
const echo = async <T>(xs: readonly T[]): Promise<readonly T[]> => xs;

/** Keeps the work observable (and catches a broken run). */
function check(out: number[]): void {
  if (out.length !== N || out[0] !== 0 || out[N - 1] !== N - 1) {
    throw new Error("wrong results");
  }
}

/** sluice's Batcher with the given concurrency. */
async function sluice(concurrency: number): Promise<void> {
  const batcher = new Batcher(echo<number>, { maxSize: MAX_SIZE, concurrency });
  check(await Promise.all(items.map((x) => batcher.process(x))));
  await batcher.close();
}

/** The cases, registered with Deno.bench and run by the script mode below. */
const cases: { name: string; fn: () => Promise<void> }[] = [
  {
    name: "dataloader (cache: false, maxBatchSize: 100)",
    async fn() {
      const loader = new DataLoader<number, number>(echo, {
        cache: false,
        maxBatchSize: MAX_SIZE,
      });
      check(await Promise.all(items.map((x) => loader.load(x))));
    },
  },
  {
    name: "sluice Batcher, concurrency: Infinity",
    fn: () => sluice(Infinity),
  },
  {
    name: "sluice Batcher, concurrency: 4",
    fn: () => sluice(4),
  },
];

for (const c of cases) {
  Deno.bench({ ...c, group: GROUP, baseline: c === cases[0] });
}

/**
 * Script mode: every case once per round, rounds interleaved so that JIT and
 * GC state hit all cases alike; medians, throughput and ratios to DataLoader.
 */
async function interleaved(rounds: number, warmup = 10): Promise<void> {
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < warmup + rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length; // rotate who runs first
      const t0 = performance.now();
      await cases[i].fn();
      if (r >= warmup) times[i].push(performance.now() - t0);
    }
  }
  const med = times.map((ts) => ts.sort((a, b) => a - b)[ts.length >> 1]);
  console.log(`${GROUP}: medians of ${rounds} interleaved rounds`);
  cases.forEach((c, i) => {
    console.log(
      `${c.name.padEnd(46)} ${med[i].toFixed(2).padStart(7)} ms` +
        `   ${(N / med[i] / 1000).toFixed(2).padStart(6)} M calls/s` +
        `   ×dataloader ${(med[i] / med[0]).toFixed(2)}`,
    );
  });
}

if (import.meta.main) await interleaved(Number(Deno.args[0] ?? 40));
