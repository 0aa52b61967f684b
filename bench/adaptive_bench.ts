// Adaptive concurrency against a simulated API whose capacity is hidden from
// the controller, in real time with real timers. The API: `capacity` calls at
// once; a call above it gets a 429 after 2 ms; an admitted call takes
// 20 ms × (1 + 0.5 (n/C)^4) × U(0.9, 1.1), n = calls in flight with it.
// Fixed concurrencies are swept per capacity (the best one is the floor),
// then AdaptiveLimit runs on C = 16, and on C = 16 → 8 → 32 (4 s each).
//
//   RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/adaptive_bench.ts
//
// Re-converged: from that time to the end of the phase, every sliding 250 ms
// window (50 ms steps) has a throughput >= 0.9 × the best fixed concurrency
// for the new capacity and 429s <= 5 % of its calls.
import { AdaptiveLimit } from "../lib/_adaptive_limit.ts";
import { map, pipeline } from "../mod.ts";

const BASE_MS = 20;
const REJECT_MS = 2;
const FIXED = [1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64];
const SWEEP_MS = 1_200;

interface Run {
  okAt: number[];
  overAt: number[];
  latencies: number[];
}

/** Keeps `limit()` calls running against the API until `durationMs`. */
function drive(
  capacityAt: (t: number) => number,
  durationMs: number,
  limit: () => number,
  sample?: (latencyMs: number, overloaded: boolean, inFlight: number) => void,
): Promise<Run> {
  const run: Run = { okAt: [], overAt: [], latencies: [] };
  const start = performance.now();
  let busy = 0;
  let inFlight = 0;
  let stopping = false;
  return new Promise((resolve) => {
    const call = () => {
      inFlight++;
      const t0 = performance.now();
      const capacity = capacityAt(t0 - start);
      const ok = busy < capacity;
      let ms = REJECT_MS;
      if (ok) {
        const x = ++busy / capacity;
        ms = BASE_MS * (1 + 0.5 * x ** 4) * (0.9 + 0.2 * Math.random());
      }
      setTimeout(() => {
        const t = performance.now();
        inFlight--;
        if (ok) busy--;
        if (!stopping) {
          if (ok) {
            run.okAt.push(t - start);
            run.latencies.push(t - t0);
          } else run.overAt.push(t - start);
          sample?.(t - t0, !ok, inFlight);
          if (t - start >= durationMs) stopping = true;
        }
        if (!stopping) pump();
        else if (inFlight === 0) resolve(run);
      }, ms);
    };
    const pump = () => {
      while (inFlight < limit()) call();
    };
    pump();
  });
}

/**
 * The same API called by a real `map` stage with `concurrency: { adaptive }`
 * and `retry` for the 429s (each rejected call retries after a backoff of
 * 1–8 ms), over an endless source, until `durationMs`.
 */
async function stage(
  capacityAt: (t: number) => number,
  durationMs: number,
): Promise<Run> {
  const run: Run = { okAt: [], overAt: [], latencies: [] };
  const start = performance.now();
  let busy = 0;
  const api = (_: number, ctx: { signal: AbortSignal }) =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const ok = busy < capacityAt(t0 - start);
      let ms = REJECT_MS;
      if (ok) {
        const x = ++busy / capacityAt(t0 - start);
        ms = BASE_MS * (1 + 0.5 * x ** 4) * (0.9 + 0.2 * Math.random());
      }
      const timer = setTimeout(() => {
        const t = performance.now();
        if (ok) {
          busy--;
          run.okAt.push(t - start);
          run.latencies.push(t - t0);
          resolve(1);
        } else {
          run.overAt.push(t - start);
          reject(
            Object.assign(new Error("Too Many Requests"), { status: 429 }),
          );
        }
      }, ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        if (ok) busy--;
        reject(ctx.signal.reason);
      }, { once: true });
    });
  function* endless() {
    for (let i = 0;; i++) yield i;
  }
  const flow = pipeline(map(api, {
    concurrency: { adaptive: { min: 1, max: 64 } },
    retry: {
      attempts: 1_000,
      delayMs: 1,
      maxDelayMs: 8,
      retryIf: (e) => (e as { status?: number }).status === 429,
    },
  })).run(endless(), { order: "completion" });
  for await (const _ of flow) {
    if (performance.now() - start >= durationMs) break;
  }
  return run;
}

const rate = (r: Run, from: number, to: number) =>
  r.okAt.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
const overShare = (r: Run, from: number, to: number) => {
  const over = r.overAt.filter((t) => t >= from && t < to).length;
  return over / (over + r.okAt.filter((t) => t >= from && t < to).length);
};
const p50 = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1] ?? 0;
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** Time from `change` to the end of the last bad 250 ms window before `end`. */
function reconvergence(r: Run, change: number, end: number, best: number) {
  let last = change;
  for (let w = change; w + 250 <= end; w += 50) {
    const good = rate(r, w, w + 250) >= 0.9 * best &&
      overShare(r, w, w + 250) <= 0.05;
    if (!good) last = w + 250;
  }
  return last - change;
}

const capacities = [8, 16, 32];
const best: Record<number, number> = {};
const rows: string[] = [];
const cells: Record<number, string[]> = {};
for (const capacity of capacities) {
  best[capacity] = 0;
  for (const c of FIXED) {
    const r = await drive(() => capacity, SWEEP_MS, () => c);
    const tput = rate(r, 0, SWEEP_MS);
    best[capacity] = Math.max(best[capacity], tput);
    (cells[c] ??= []).push(
      `${tput.toFixed(0)} | ${pct(overShare(r, 0, SWEEP_MS))} | ${
        p50(r.latencies).toFixed(1)
      }`,
    );
  }
}
for (const c of FIXED) rows.push(`| fixed ${c} | ${cells[c].join(" | ")} |`);

const adaptive = (now = () => performance.now()) =>
  new AdaptiveLimit({ min: 1, max: 64, initial: 1 }, now);

const STATIC_MS = 6_000;
const a = adaptive();
const still = await drive(
  () => 16,
  STATIC_MS,
  () => a.limit,
  (l, o, n) => a.sample(l, o, n),
);
const stillRate = rate(still, 0, STATIC_MS);

const PHASE = 4_000;
const phases = [16, 8, 32];
const b = adaptive();
const moving = await drive(
  (t) => phases[Math.min(2, Math.floor(t / PHASE))],
  3 * PHASE,
  () => b.limit,
  (l, o, n) => b.sample(l, o, n),
);

const staged = await stage(() => 16, STATIC_MS);
const stagedRate = rate(staged, 0, STATIC_MS);
const stagedMoving = await stage(
  (t) => phases[Math.min(2, Math.floor(t / PHASE))],
  3 * PHASE,
);

console.log(`## Fixed concurrency (${SWEEP_MS} ms each)\n`);
console.log(
  `| concurrency | ${
    capacities.map((c) => `C=${c} ok/s | 429 | p50 ms`).join(" | ")
  } |`,
);
console.log(`|---|${capacities.map(() => "--:|--:|--:").join("|")}|`);
for (const row of rows) console.log(row);
console.log(
  `| **best fixed** | ${
    capacities.map((c) => `**${best[c].toFixed(0)}** | | `).join(" | ")
  } |\n`,
);
console.log(`## AdaptiveLimit (min 1, max 64, initial 1)\n`);
console.log(`| run | ok/s | ratio to best fixed | 429 | p50 ms |`);
console.log(`|---|--:|--:|--:|--:|`);
console.log(
  `| C=16, ${STATIC_MS / 1000} s (ramp included) | ${stillRate.toFixed(0)} | ${
    (stillRate / best[16]).toFixed(3)
  } | ${pct(overShare(still, 0, STATIC_MS))} | ${
    p50(still.latencies).toFixed(1)
  } |`,
);
for (let i = 0; i < 3; i++) {
  const from = i * PHASE;
  const r = rate(moving, from, from + PHASE);
  console.log(
    `| C=16→8→32, phase C=${phases[i]} | ${r.toFixed(0)} | ${
      (r / best[phases[i]]).toFixed(3)
    } | ${pct(overShare(moving, from, from + PHASE))} | |`,
  );
}
console.log(
  `| C=16→8→32, whole run | | | ${pct(overShare(moving, 0, 3 * PHASE))} | |\n`,
);
console.log(
  `Re-convergence (250 ms windows >= 0.9 × best fixed, <= 5 % 429s): after halving ${
    reconvergence(moving, PHASE, 2 * PHASE, best[8]).toFixed(0)
  } ms, after doubling ${
    reconvergence(moving, 2 * PHASE, 3 * PHASE, best[32]).toFixed(0)
  } ms\n`,
);

console.log(
  `## map(api, { concurrency: { adaptive: { min: 1, max: 64 } }, retry }) (429s retried after 1–8 ms)\n`,
);
console.log(`| run | ok/s | ratio to best fixed | 429 | p50 ms |`);
console.log(`|---|--:|--:|--:|--:|`);
console.log(
  `| C=16, ${STATIC_MS / 1000} s (ramp included) | ${stagedRate.toFixed(0)} | ${
    (stagedRate / best[16]).toFixed(3)
  } | ${pct(overShare(staged, 0, STATIC_MS))} | ${
    p50(staged.latencies).toFixed(1)
  } |`,
);
for (let i = 0; i < 3; i++) {
  const from = i * PHASE;
  const r = rate(stagedMoving, from, from + PHASE);
  console.log(
    `| C=16→8→32, phase C=${phases[i]} | ${r.toFixed(0)} | ${
      (r / best[phases[i]]).toFixed(3)
    } | ${pct(overShare(stagedMoving, from, from + PHASE))} | |`,
  );
}
console.log(
  `| C=16→8→32, whole run | | | ${
    pct(overShare(stagedMoving, 0, 3 * PHASE))
  } | |\n`,
);
console.log(
  `Re-convergence of the stage: after halving ${
    reconvergence(stagedMoving, PHASE, 2 * PHASE, best[8]).toFixed(0)
  } ms, after doubling ${
    reconvergence(stagedMoving, 2 * PHASE, 3 * PHASE, best[32]).toFixed(0)
  } ms`,
);
