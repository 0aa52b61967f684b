// What events and item tracking cost: the one-stage benchmark of map_bench.ts (one `map` stage,
// concurrency 16, 100,000 items of `async (x) => x * 2`, input order),
// consumed with `collect()` and with `for await`, measured in the same run
// - with no listener (each group's baseline: events are dispatched only once
//   someone listens, so this is the engine with events off);
// - with a "completed" listener that only increments a counter;
// - with a "progress" listener (default `progressIntervalMs`, 250 ms);
// - with item tracking (`run(items, { track: true })`, no listener);
// and the sequential loop `for (const x of items) out.push(await fn(x))` as
// the floor that map_bench.ts reports its ratios against.
//
// Run: RUST_BACKTRACE=0 node_modules/.bin/deno bench -A bench/events_bench.ts
// or, interleaved rounds with medians and ratios:
//      RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/events_bench.ts [rounds]
// Claim checked: with no listener, events cost nothing measurable (the
// no-listener cases run as fast as map_bench.ts's sluice cases).
import { type Flow, map, pipeline, type RunOptions } from "../mod.ts";

const N = 100_000;
const CONCURRENCY = 16;

const items: number[] = Array.from({ length: N }, (_, i) => i);
// An async function on purpose: the workload of map_bench.ts.
// deno-lint-ignore require-await
const fn = async (x: number): Promise<number> => x * 2;
const doubled = pipeline(map(fn, { concurrency: CONCURRENCY }));

/** Keeps the work observable (and catches a broken run). */
function check(out: number[]): void {
  if (out.length !== N) throw new Error(`${out.length} results, not ${N}`);
  if (out[0] !== 0 || out[N - 1] !== 2 * (N - 1)) {
    throw new Error("results out of order");
  }
}

/** How a case listens to its flow; returns a check run after the flow ends. */
type Listen = (flow: Flow<number>) => () => void;

const LISTENERS: {
  label: string;
  listen: Listen;
  options?: RunOptions<number>;
}[] = [
  { label: "no listener", listen: () => () => {} },
  {
    label: '"completed" listener (counter)',
    listen(flow) {
      let completed = 0;
      flow.addEventListener("completed", () => void completed++);
      return () => {
        if (completed !== N) throw new Error(`${completed} "completed" events`);
      };
    },
  },
  {
    label: '"progress" listener',
    listen(flow) {
      let progress = 0;
      flow.addEventListener("progress", () => void progress++);
      // At least the final event, dispatched when the run settles.
      return () => {
        if (progress === 0) throw new Error('no "progress" event');
      };
    },
  },
  {
    label: "track: true",
    options: { track: true },
    listen(flow) {
      return () => {
        if (flow.item(N - 1)?.status !== "done") throw new Error("untracked");
      };
    },
  },
];

const CONSUMERS = {
  "collect()": async (flow: Flow<number>) => await flow.collect(),
  "for await": async (flow: Flow<number>) => {
    const out: number[] = [];
    for await (const x of flow) out.push(x);
    return out;
  },
} as const;

interface Case {
  name: string;
  group: string;
  baseline: boolean;
  fn: () => Promise<void>;
}

const groupOf = (consumer: string) =>
  `events: map, 100k items, concurrency 16, ${consumer}`;

/** The cases, registered with Deno.bench and run by the script mode below. */
const cases: Case[] = [
  {
    name: "floor: sequential loop",
    group: groupOf("collect()"),
    baseline: false,
    async fn() {
      const out: number[] = [];
      for (const x of items) out.push(await fn(x));
      check(out);
    },
  },
  ...Object.entries(CONSUMERS).flatMap(([consumer, consume]) =>
    LISTENERS.map(({ label, listen, options }, i) => ({
      name: `sluice ${consumer}, ${label}`,
      group: groupOf(consumer),
      baseline: i === 0,
      async fn() {
        const flow = doubled.run(items, options);
        const after = listen(flow);
        check(await consume(flow));
        after();
      },
    }))
  ),
];

for (const { name, group, baseline, fn } of cases) {
  Deno.bench({ name, group, baseline, fn });
}

/**
 * Script mode: every case once per round, rounds interleaved so that JIT and
 * GC state hit all cases alike; medians, ratios to the same consumer with no
 * listener and to the sequential loop.
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
  console.log(
    `events: map, 100k items, concurrency 16, input order: ` +
      `medians of ${rounds} interleaved rounds`,
  );
  cases.forEach((c, i) => {
    const base = cases.findIndex((b) => b.baseline && b.group === c.group);
    const vsBase = i === 0 ? "" : (med[i] / med[base]).toFixed(2);
    // The cost per item over the same consumer with no listener.
    const perItem = i === 0
      ? ""
      : `${((med[i] - med[base]) / N * 1e3).toFixed(2)} µs/item`;
    console.log(
      `${c.name.padEnd(50)} ${med[i].toFixed(2).padStart(7)} ms` +
        `   ×no listener ${vsBase.padStart(4)}` +
        `   ×loop ${(med[i] / med[0]).toFixed(2)}   ${perItem}`,
    );
  });
}

if (import.meta.main) await interleaved(Number(Deno.args[0] ?? 40));
