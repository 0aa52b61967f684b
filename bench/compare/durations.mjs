// The heavy-tailed durations of W2 (the same PRNG and seed as
// bench/heavy_tail_bench.ts) and the references computed from them.
import { mulberry32 } from "./common.mjs";

export const SEED = 20240611;

/** `n` durations in whole ms: 90 % uniform 1–10, 10 % uniform 50–200. */
export function heavyTailDurations(n, seed = SEED) {
  const random = mulberry32(seed);
  return Array.from(
    { length: n },
    () =>
      random() < 0.9
        ? 1 + Math.round(random() * 9)
        : 50 + Math.round(random() * 150),
  );
}

/** Makespan of an ideal greedy pool of `workers`, in input order of start. */
export function idealGreedy(durations, workers) {
  const free = new Array(workers).fill(0);
  for (const d of durations) {
    let w = 0;
    for (let k = 1; k < workers; k++) if (free[k] < free[w]) w = k;
    free[w] += d;
  }
  return Math.max(...free);
}

/** max(sum / workers, max): no schedule can beat it. */
export function lowerBound(durations, workers) {
  const sum = durations.reduce((a, b) => a + b, 0);
  return Math.max(sum / workers, Math.max(...durations));
}
