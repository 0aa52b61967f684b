// One `map` stage, concurrency 16, over 100,000 items of a trivial async
// function, against two floors measured in the same run:
// - the sequential loop `for (const x of items) out.push(await fn(x))`
//   (the group's baseline);
// - a bare async generator consumed with `for await` (the cost of the
//   for-await protocol itself, one promise per item).
//
// Run: RUST_BACKTRACE=0 node_modules/.bin/deno bench -A bench/map_bench.ts
// or, interleaved rounds with medians and ratios (less sensitive to the order
// Deno.bench runs things in):
//      RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/map_bench.ts [rounds]
// Targets: `for await` within 1.1× of the bare generator, in both orders;
// `collect()` within 2× of the sequential loop.
import { map, pipeline } from "../mod.ts";

const N = 100_000;
const CONCURRENCY = 16;
const GROUP = "map: 100k items, concurrency 16";

const items: number[] = Array.from({ length: N }, (_, i) => i);
// An async function on purpose: the workload of the issue, `async (x) => x * 2`.
// deno-lint-ignore require-await
const fn = async (x: number): Promise<number> => x * 2;
const doubled = pipeline(map(fn, { concurrency: CONCURRENCY }));

/** Keeps the work observable (and catches a broken run). */
function check(out: number[], ordered: boolean): void {
  if (out.length !== N) throw new Error(`${out.length} results, not ${N}`);
  if (ordered && (out[0] !== 0 || out[N - 1] !== 2 * (N - 1))) {
    throw new Error("results out of order");
  }
}

/** The cases, registered with Deno.bench and run by the script mode below. */
const cases: { name: string; fn: () => Promise<void> }[] = [
  {
    name: "floor: sequential loop",
    async fn() {
      const out: number[] = [];
      for (const x of items) out.push(await fn(x));
      check(out, true);
    },
  },
  {
    name: "floor: bare async generator, for await",
    async fn() {
      async function* g(): AsyncGenerator<number> {
        for (const x of items) yield await fn(x);
      }
      const out: number[] = [];
      for await (const x of g()) out.push(x);
      check(out, true);
    },
  },
  ...(["input", "completion"] as const).map((order) => ({
    name: `sluice for await, ${order} order`,
    async fn() {
      const out: number[] = [];
      for await (const x of doubled.run(items, { order })) out.push(x);
      check(out, order === "input");
    },
  })),
  ...(["input", "completion"] as const).map((order) => ({
    name: `sluice collect(), ${order} order`,
    async fn() {
      check(await doubled.run(items, { order }).collect(), order === "input");
    },
  })),
];

for (const c of cases) {
  Deno.bench({ ...c, group: GROUP, baseline: c === cases[0] });
}

/**
 * Script mode: every case once per round, rounds interleaved so that JIT and
 * GC state hit all cases alike; medians and ratios to both floors.
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
      `${c.name.padEnd(40)} ${med[i].toFixed(2).padStart(7)} ms` +
        `   ×loop ${(med[i] / med[0]).toFixed(2)}` +
        `   ×generator ${(med[i] / med[1]).toFixed(2)}`,
    );
  });
}

if (import.meta.main) await interleaved(Number(Deno.args[0] ?? 50));
