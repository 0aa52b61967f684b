// A five-stage pipeline `map → batch(100) → map → flatten → map` over 100,000
// items with trivial async functions, against floors measured in the same run:
// - a plain sequential loop doing the same work (the group's baseline);
// - the same stages as chained bare async generators, consumed with
//   `for await` (what one would write by hand for streaming).
//
// Run: RUST_BACKTRACE=0 node_modules/.bin/deno bench -A bench/multi_stage_bench.ts
// or, interleaved rounds with medians and ratios:
//      RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/multi_stage_bench.ts [rounds]
import { batch, flatten, map, pipeline } from "../mod.ts";

const N = 100_000;
const BATCH = 100;
const GROUP = "map → batch(100) → map → flatten → map: 100k items";

const items: number[] = Array.from({ length: N }, (_, i) => i);
// Async functions on purpose (trivial async work).
// deno-lint-ignore require-await
const inc = async (x: number): Promise<number> => x + 1;
// deno-lint-ignore require-await
const doubleAll = async (xs: number[]): Promise<number[]> =>
  xs.map((x) => x * 2);
// deno-lint-ignore require-await
const dec = async (x: number): Promise<number> => x - 1;

const stages = pipeline(
  map(inc, { concurrency: 16 }),
  batch<number>({ maxSize: BATCH }),
  map(doubleAll, { concurrency: 4 }),
  flatten<number>(),
  map(dec, { concurrency: 16 }),
);

/** Keeps the work observable (and catches a broken run). */
function check(out: number[], ordered: boolean): void {
  if (out.length !== N) throw new Error(`${out.length} results, not ${N}`);
  if (ordered && (out[0] !== 1 || out[N - 1] !== 2 * N - 1)) {
    throw new Error("results out of order");
  }
}

async function* mapGen<I, O>(
  src: AsyncIterable<I> | Iterable<I>,
  f: (x: I) => Promise<O>,
): AsyncGenerator<O> {
  for await (const x of src) yield await f(x);
}
async function* batchGen<T>(src: AsyncIterable<T>): AsyncGenerator<T[]> {
  let forming: T[] = [];
  for await (const x of src) {
    forming.push(x);
    if (forming.length === BATCH) {
      yield forming;
      forming = [];
    }
  }
  if (forming.length > 0) yield forming;
}
async function* flattenGen<T>(src: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const xs of src) yield* xs;
}

/** The cases, registered with Deno.bench and run by the script mode below. */
const cases: { name: string; fn: () => Promise<void> }[] = [
  {
    name: "floor: sequential loop",
    async fn() {
      const out: number[] = [];
      let forming: number[] = [];
      const flush = async () => {
        for (const y of await doubleAll(forming)) out.push(await dec(y));
        forming = [];
      };
      for (const x of items) {
        forming.push(await inc(x));
        if (forming.length === BATCH) await flush();
      }
      if (forming.length > 0) await flush();
      check(out, true);
    },
  },
  {
    name: "floor: chained async generators, for await",
    async fn() {
      const out: number[] = [];
      const chain = mapGen(
        flattenGen(mapGen(batchGen(mapGen(items, inc)), doubleAll)),
        dec,
      );
      for await (const x of chain) out.push(x);
      check(out, true);
    },
  },
  ...(["input", "completion"] as const).map((order) => ({
    name: `sluice for await, ${order} order`,
    async fn() {
      const out: number[] = [];
      for await (const x of stages.run(items, { order })) out.push(x);
      check(out, order === "input");
    },
  })),
  ...(["input", "completion"] as const).map((order) => ({
    name: `sluice collect(), ${order} order`,
    async fn() {
      check(await stages.run(items, { order }).collect(), order === "input");
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
async function interleaved(rounds: number, warmup = 5): Promise<void> {
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
      `${c.name.padEnd(44)} ${med[i].toFixed(2).padStart(7)} ms` +
        `   ×loop ${(med[i] / med[0]).toFixed(2)}` +
        `   ×generators ${(med[i] / med[1]).toFixed(2)}`,
    );
  });
}

if (import.meta.main) await interleaved(Number(Deno.args[0] ?? 30));
