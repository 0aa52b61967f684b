/**
 * The heavy-tail demo: 300 simulated API calls whose latencies have a heavy
 * tail (most take 20–80 ms, about one in twenty takes 300–900 ms), run three
 * ways with 10 calls at a time:
 *
 * 1. chunks of 10 with `Promise.all` (the naive way: every chunk waits for
 *    its slowest call, so one straggler idles nine slots);
 * 2. sluice, `order: "completion"`: a free worker takes the next call at once;
 * 3. sluice, `order: "input"` (the default): the same pool, results yielded in
 *    input order, each as soon as it and every earlier call are done.
 *
 * The latencies come from a seeded PRNG, so every run sees the same calls.
 * The demo checks its own results and exits with status 1 if any is missing
 * or out of order.
 *
 * Run: `deno run -A examples/heavy_tail.ts` (`npm run demo` serves the SSE page).
 *
 * @module
 */
import { map, pipeline } from "../mod.ts";
import { plainStats, watchProgress } from "./_terminal.ts";

const CALLS = 300;
const CONCURRENCY = 10;
const SEED = 3;
const SLOW_SHARE = 0.06;
const FAST_MS: [number, number] = [20, 80];
const SLOW_MS: [number, number] = [300, 900];

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(SEED);
const between = ([lo, hi]: [number, number]) =>
  Math.round(lo + random() * (hi - lo));
/** The latency of call `i`, in milliseconds. */
const latencies: number[] = Array.from(
  { length: CALLS },
  () => random() < SLOW_SHARE ? between(SLOW_MS) : between(FAST_MS),
);
const ids: number[] = latencies.map((_, i) => i);

interface Reply {
  id: number;
  ms: number;
}

/** A simulated API call: answers after its latency; honours `signal`. */
function callApi(id: number, signal?: AbortSignal): Promise<Reply> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve({ id, ms: latencies[id] });
    }, latencies[id]);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

interface Outcome {
  label: string;
  makespanMs: number;
  firstResultMs: number;
  results: Reply[];
  inputOrder: boolean;
}

/** What the progress line adds to `formatProgress()`'s: calls running, held. */
const extra = (running: number, held: number) =>
  ` · ${running} running` + (held > 0 ? ` · ${held} held` : "");

/** (a) The naive way: chunks of 10, each awaited with `Promise.all`. */
async function runChunks(label: string): Promise<Outcome> {
  let started = 0;
  let delivered = 0;
  let finished = 0;
  let running = 0;
  let settled = false;
  const start = performance.now();
  const progress = watchProgress(() =>
    plainStats({
      elapsedMs: performance.now() - start,
      itemsIn: started,
      itemsOut: delivered,
      running,
      done: settled,
    }), {
    label,
    total: CALLS,
    extra: (s) => extra(s.running, finished - delivered),
  });
  const results: Reply[] = [];
  let firstResultMs = NaN;
  try {
    for (let i = 0; i < CALLS; i += CONCURRENCY) {
      const chunk = ids.slice(i, i + CONCURRENCY);
      started += chunk.length;
      const replies = await Promise.all(chunk.map(async (id) => {
        running++;
        try {
          return await callApi(id);
        } finally {
          running--;
          finished++;
        }
      }));
      if (i === 0) firstResultMs = performance.now() - start;
      results.push(...replies);
      delivered += replies.length;
    }
  } finally {
    settled = true;
    progress.stop();
  }
  const makespanMs = performance.now() - start;
  return { label, makespanMs, firstResultMs, results, inputOrder: true };
}

/** (b) and (c): one sluice `map` stage with 10 workers. */
async function runSluice(
  label: string,
  order: "input" | "completion",
): Promise<Outcome> {
  const calls = pipeline(
    map((id: number, ctx) => callApi(id, ctx.signal), {
      concurrency: CONCURRENCY,
    }),
  );
  const start = performance.now();
  const flow = calls.run(ids, { order });
  const progress = watchProgress(() => flow.stats(), {
    label,
    total: CALLS,
    // running: calls running now; held: calls done, results not yet delivered
    // (in input order, waiting for an earlier call).
    extra: (s) => extra(s.running, s.stages[0].completed - s.itemsOut),
  });
  const results: Reply[] = [];
  let firstResultMs = NaN;
  try {
    for await (const reply of flow) {
      if (results.length === 0) firstResultMs = performance.now() - start;
      results.push(reply);
    }
  } finally {
    progress.stop();
  }
  const makespanMs = performance.now() - start;
  return {
    label,
    makespanMs,
    firstResultMs,
    results,
    inputOrder: order === "input",
  };
}

/** Every call answered exactly once, with its own reply (in order if asked). */
function check(o: Outcome): string[] {
  const problems: string[] = [];
  if (o.results.length !== CALLS) {
    problems.push(`${o.label}: ${o.results.length} results, not ${CALLS}`);
  }
  const seen = new Set<number>();
  o.results.forEach((r, i) => {
    if (seen.has(r.id)) problems.push(`${o.label}: call ${r.id} twice`);
    seen.add(r.id);
    if (r.ms !== latencies[r.id]) {
      problems.push(`${o.label}: call ${r.id} has a wrong reply`);
    }
    if (o.inputOrder && r.id !== i) {
      problems.push(`${o.label}: position ${i} holds call ${r.id}`);
    }
  });
  for (const id of ids) {
    if (!seen.has(id)) problems.push(`${o.label}: call ${id} is missing`);
  }
  return problems.slice(0, 5);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** An ideal pool: each worker takes the next call the moment it is free. */
function idealPool(durations: number[], workers: number): number {
  const free = new Array<number>(workers).fill(0);
  for (const ms of durations) {
    const w = free.indexOf(Math.min(...free));
    free[w] += ms;
  }
  return Math.max(...free);
}

const sum = latencies.reduce((a, b) => a + b, 0);
const slowest = Math.max(...latencies);
const slowCount = latencies.filter((ms) => ms >= SLOW_MS[0]).length;
const lowerBound = Math.max(sum / CONCURRENCY, slowest);
const ideal = idealPool(latencies, CONCURRENCY);

console.log(
  `${CALLS} simulated API calls (mulberry32, seed ${SEED}), ` +
    `${CONCURRENCY} at a time:\n` +
    `  ${CALLS - slowCount} take ${FAST_MS[0]}–${FAST_MS[1]} ms, ` +
    `${slowCount} take ${SLOW_MS[0]}–${SLOW_MS[1]} ms; ` +
    `${seconds(sum)} of work in all.\n` +
    `  Lower bound max(sum/${CONCURRENCY}, slowest): ${seconds(lowerBound)}; ` +
    `an ideal pool: ${seconds(ideal)}.\n` +
    `Progress: results delivered/calls; running = calls running now; ` +
    `held = finished, not delivered yet.\n`,
);

const ROW_NAMES: Record<string, string> = {
  "chunks of 10": "Promise.all, chunks of 10",
  "completion": "sluice, completion order",
  "input order": "sluice, input order",
};
const outcomes: Outcome[] = [];
for (
  const run of [
    () => runChunks("chunks of 10"),
    () => runSluice("completion", "completion"),
    () => runSluice("input order", "input"),
  ]
) {
  const o = await run();
  console.log(
    `  makespan ${seconds(o.makespanMs)}, ` +
      `first result after ${o.firstResultMs.toFixed(0)} ms\n`,
  );
  outcomes.push(o);
}
const base = outcomes[0].makespanMs;
const rows = [
  ["", "makespan", "first result", "vs chunks", "vs ideal pool"],
  ...outcomes.map((o) => [
    ROW_NAMES[o.label] ?? o.label,
    seconds(o.makespanMs),
    `${o.firstResultMs.toFixed(0)} ms`,
    `${(base / o.makespanMs).toFixed(2)}×`,
    `${(o.makespanMs / ideal).toFixed(2)}×`,
  ]),
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const row of rows) {
  const cells = row.map((cell, c) =>
    c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])
  );
  console.log(cells.join("   "));
}
console.log(
  `(vs chunks: speedup over chunks of 10; vs ideal pool: makespan / ${
    seconds(ideal)
  })`,
);

const problems = outcomes.flatMap(check);
if (problems.length > 0) {
  console.error(`\nFAILED:\n  ${problems.join("\n  ")}`);
  Deno.exit(1);
}
console.log(
  `\nChecked: all ${CALLS} results present in every run, in input order where asked.`,
);
