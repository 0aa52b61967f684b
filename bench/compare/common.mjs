// Shared by every workload child of bench/compare (Node and Deno alike): the
// command line, the sluice module, timing, the seeded PRNG, the consumer that
// checks every answer, and the one JSON line a child prints.
import process from "node:process";

/** `--key value` and `--flag` pairs of this process. */
export const args = parseArgs(process.argv.slice(2));

/** "node" or "deno". */
export const runtime = "Deno" in globalThis ? "deno" : "node";

/** The marker in front of the one JSON line a child prints. */
export const RESULT_MARK = "@@compare ";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[key] = true;
    else {
      out[key] = next;
      i++;
    }
  }
  return out;
}

/** A numeric argument, or `fallback`. */
export function numArg(name, fallback) {
  const v = args[name];
  return v === undefined || v === true ? fallback : Number(v);
}

/** sluice itself: the module the runner passes as `--sluice` (a file URL). */
export function loadSluice() {
  if (typeof args.sluice !== "string") {
    throw new Error("--sluice <file URL of the sluice module> is missing");
  }
  return import(args.sluice);
}

export const now = () => performance.now();

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects garbage when the runtime was started with --expose-gc. */
export function gc() {
  if (typeof globalThis.gc === "function") globalThis.gc();
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** mulberry32: a small seeded PRNG (the one bench/heavy_tail_bench.ts uses). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `0, 1, …, n - 1`. */
export const range = (n) => Array.from({ length: n }, (_, i) => i);

/** murmur3's 32-bit finaliser: a sum of these catches swapped values. */
function mix(v) {
  let h = v | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The consumer every case feeds: it counts, sums, hashes (order-independent)
 * and, where the case promises input order, checks each value against the
 * one expected at its position. It also notes when the first value arrived.
 */
export class Sink {
  count = 0;
  sum = 0;
  hash = 0;
  orderOk = true;
  firstAt = 0;
  batches = 0;
  badBatch = -1;
  /** @param {((k: number) => number) | null} expectAt value at position k, when ordered */
  constructor(expectAt) {
    this.expectAt = expectAt;
  }
  add(v) {
    const k = this.count;
    if (k === 0) this.firstAt = now();
    if (this.expectAt !== null && v !== this.expectAt(k)) this.orderOk = false;
    this.count = k + 1;
    this.sum += v;
    this.hash = (this.hash + mix(v)) | 0;
  }
  /** A batch: every batch but the last must hold `size` items. */
  addBatch(b, size) {
    if (b.length !== size && this.badBatch < 0) this.badBatch = this.batches;
    this.batches++;
    for (let i = 0; i < b.length; i++) this.add(b[i]);
  }
  /** Adds every value of an array (a materialised result). */
  addAll(values) {
    for (let i = 0; i < values.length; i++) this.add(values[i]);
  }
}

/**
 * The floor case of a workload (id "loop"): the sequential loop every ratio
 * is measured against. `extra` adds or overrides fields (e.g. `only`).
 */
export function floorCase(label, setup, extra = {}) {
  return {
    id: "loop",
    lib: "floor",
    label,
    order: "input",
    consume: "loop",
    role: "floor",
    setup,
    ...extra,
  };
}

/** The floor of W1 and W6: `for (const x of items) sink.add(await fn(x))`. */
export function awaitLoopCase(items, fn, at) {
  return floorCase("sequential `await fn(x)` loop", () => async () => {
    const sink = new Sink(at);
    for (const x of items) sink.add(await fn(x));
    return sink;
  });
}

/** What a correct run over `values` gives, for `verify`. */
export function expected(values) {
  const s = new Sink(null);
  for (const v of values) s.add(v);
  return { count: s.count, sum: s.sum, hash: s.hash };
}

/**
 * Checks a run's answer: count, checksum, hash, order where promised, and
 * batch sizes (`batchSize`: all full but the last). Returns an error message,
 * or null when the answer is right.
 */
export function verify(sink, want, { ordered, batchSize } = {}) {
  if (sink.count !== want.count) {
    return `${sink.count} results, expected ${want.count}`;
  }
  if (sink.sum !== want.sum || sink.hash !== want.hash) {
    return `wrong values: sum ${sink.sum}, hash ${sink.hash}; expected ${want.sum}, ${want.hash}`;
  }
  if (ordered && !sink.orderOk) return "results out of input order";
  if (batchSize !== undefined) {
    const full = Math.floor(want.count / batchSize);
    const bad = sink.badBatch;
    if (bad >= 0 && bad < full) return `batch ${bad} is not of ${batchSize}`;
    if (sink.batches !== Math.ceil(want.count / batchSize)) {
      return `${sink.batches} batches, expected ${
        Math.ceil(want.count / batchSize)
      }`;
    }
  }
  return null;
}

/** Prints the child's one result line and ends the process. */
export function report(result) {
  console.log(RESULT_MARK + JSON.stringify({ runtime, ...result }));
  // Some peers leave timers or handles behind: end now, not when they expire.
  process.exit(0);
}

/**
 * Runs a workload child: `--list` prints the cases; `--case <id>` runs one
 * and reports it. `run(c)` returns the measurement (an object); it throws on a
 * wrong answer, which is reported as `{ ok: false, error }`, without figures.
 */
export async function main(cases, run) {
  if (args.list) {
    const list = cases.map((
      { id, lib, label, order, consume, role, only },
    ) => ({
      id,
      lib,
      label,
      order,
      consume,
      role,
      only,
    }));
    console.log(RESULT_MARK + JSON.stringify(list));
    return;
  }
  const c = cases.find((x) => x.id === args.case);
  if (c === undefined) throw new Error(`no case ${args.case}`);
  try {
    const result = await run(c);
    report({ ok: true, ...result });
  } catch (error) {
    report({ ok: false, error: String(error?.stack ?? error) });
  }
}

/**
 * Times `once()` (which returns a Sink) after `warmup` untimed calls, within
 * a time budget: at least one timed call, at most `iters`. Every call's answer
 * is checked by `check(sink)` (an error message, or null).
 */
export async function timeIterations(once, check, { warmup, iters, budgetMs }) {
  const t0 = now();
  for (let i = 0; i < warmup; i++) {
    const err = check(await once());
    if (err) throw new Error(err);
    if (now() - t0 > budgetMs / 2) break;
  }
  const samples = [];
  const t1 = now();
  for (let i = 0; i < iters; i++) {
    // No gc() here: a forced full collection between iterations costs the
    // next one far more than it saves (it throws away optimised code state).
    const start = now();
    const sink = await once();
    samples.push(now() - start);
    const err = check(sink);
    if (err) throw new Error(err);
    if (now() - t1 > budgetMs && samples.length >= 1) break;
  }
  return { ms: median(samples), samples };
}

/**
 * The `main` of the workloads timed by repetition (W1, W4, W5, W6): each case's
 * run is repeated (`--warmup` 5, `--iters` 10, `--budget` 5000 ms) and every
 * sink checked by `check(sink, c)`. The result: `n`, the median `ms`, the
 * samples and `extra(ms)` (by default the time per item).
 */
export function mainTimed(
  cases,
  n,
  check,
  extra = (ms) => ({ nsPerItem: (ms * 1e6) / n }),
) {
  return main(cases, async (c) => {
    const once = await c.setup();
    const { ms, samples } = await timeIterations(
      once,
      (sink) => check(sink, c),
      {
        warmup: numArg("warmup", 5),
        iters: numArg("iters", 10),
        budgetMs: numArg("budget", 5000),
      },
    );
    return { n, ms, samples, ...extra(ms), quick: !!args.quick };
  });
}
