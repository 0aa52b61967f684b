// The generated side of the pipeline fuzz suite (pipeline_fuzz_test.ts): run
// plans (plain data, so fast-check shrinks and prints them), the values that
// flow through a generated pipeline, and what the oracle expects of them.
//
// Values. A source item `i` is a leaf `{ k: [i], t: [], w: UNIT }`: `k` is its key
// (a fan-out appends the element's position), `t` its trail (every map stage
// appends an entry, so a result shows which functions ran on it, in order),
// `w` its weight in UNITs (2^20 per source item, as the scheduler counts:
// README "Stats item counts"), and `ix` its expected ctx.index when that is
// not `k[0]`. A batch is a plain array of values. A fan-out (a map making 0..3
// elements of a leaf) and a reshape (a map making 0..2 copies of each member
// of an array of leaves, so the array's length may change) are arrays
// carrying `fan: { k, w, ix, m }`: the parent's key, weight and index, and the
// indices of the batch members they come from. Every function is pure and
// decided by a hash of the plan's seed and the value's key, so the oracle can
// recompute what any stage did.
import fc from "fast-check";
import { prng } from "../_helpers.ts";

// ---- plans ---------------------------------------------------------------

/** What one call of a stage function does (decided per item and attempt). */
export const FAULTS = [
  "ok", // returns synchronously
  "micro", // returns after `await Promise.resolve()`
  "slow", // returns after a real sleep of 0..5 ms
  "throw", // throws synchronously
  "reject", // rejects after a real sleep of 0..3 ms
  "hang", // settles only when ctx.signal aborts
  "flaky", // fails its first 1..2 attempts, then returns
  "fatal", // throws an error that retryIf refuses to retry
] as const;
export type Fault = typeof FAULTS[number];

/**
 * A map (`tag`: 1..3 functions, a multi-task stage from 2), a fan-out (leaf
 * to array), a reshape (array of leaves to array of another length) or a
 * filter.
 */
export interface WorkPlan {
  kind: "tag" | "fan" | "reshape" | "filter";
  fns: number;
  concurrency: number;
  retry?: {
    attempts: number;
    delayMs: number;
    jitter: boolean;
    scope: "task" | "stage";
    retryIf: boolean;
  };
  timeoutMs?: number;
  /** `handler`: a function deciding per item (sync or async). */
  onError: "fail" | "skip" | "handler" | "asyncHandler";
  /** Weights of FAULTS, in that order. */
  faults: number[];
  /** Filters: the share of values kept, in percent. */
  keepPct: number;
  /** Per-key order (`key`): items keyed by a hash of their value mod this. */
  keyMod?: number;
  /** `concurrency: { adaptive: { min: 1, max: concurrency } }` instead. */
  adaptive?: boolean;
}

export interface BatchPlan {
  kind: "batch";
  maxSize: number;
  maxWaitMs?: number;
  minSize: number;
}

export interface FlattenPlan {
  kind: "flatten";
}

export type StagePlan = WorkPlan | BatchPlan | FlattenPlan;

export interface SourcePlan {
  /** `thenable`: an async iterator whose next() returns a plain thenable. */
  kind: "array" | "sync" | "async" | "stream" | "thenable";
  n: number;
  /** The read of item `throwAt` throws (or rejects, or errors the stream). */
  throwAt?: number;
  /** How long return() / cancel() takes: at once, a few ms, or forever. */
  cleanup: "fast" | "slow" | "never";
}

export interface ConsumerPlan {
  /** iterate2: two next() calls always pending. */
  kind: "iterate" | "iterate2" | "collect" | "readable";
  /** iterate: break after this many results; readable: cancel after them. */
  leaveAt?: number;
  /** All but collect: a real sleep of this many ms after each result. */
  readDelay?: number;
}

export interface StopPlan {
  kind: "none" | "abort" | "signal";
  /**
   * before: right after run() (a signal: already aborted); ms: after a real
   * sleep of `at` ms; result: once the consumer has `at` results; call: inside
   * the `at`-th stage call, onError handler or source read; event: inside the
   * listener of the `at`-th event.
   */
  when: "before" | "ms" | "result" | "call" | "event";
  at: number;
  /** Whether the abort gives a reason (else the default AbortError). */
  reason: boolean;
}

export interface RunPlan {
  seed: number;
  source: SourcePlan;
  stages: StagePlan[];
  order: "input" | "completion";
  bufferSize?: number;
  /** run(source, { id }) gives ids `id:<index>`. */
  useId: boolean;
  /** A "progress" listener with this progressIntervalMs. */
  progressMs?: number;
  consumer: ConsumerPlan;
  stop: StopPlan;
}

const workArb = (kind: WorkPlan["kind"]): fc.Arbitrary<WorkPlan> =>
  fc.record({
    kind: fc.constant(kind),
    fns: kind === "tag" ? fc.integer({ min: 1, max: 3 }) : fc.constant(1),
    concurrency: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) },
      { weight: 1, arbitrary: fc.constant(Infinity) },
    ),
    retry: fc.option(
      fc.record({
        attempts: fc.integer({ min: 1, max: 3 }),
        delayMs: fc.integer({ min: 0, max: 5 }),
        jitter: fc.boolean(),
        scope: fc.constantFrom("task" as const, "stage" as const),
        retryIf: fc.boolean(),
      }),
      { nil: undefined },
    ),
    timeoutMs: fc.option(fc.integer({ min: 5, max: 30 }), { nil: undefined }),
    onError: fc.constantFrom(
      "fail" as const,
      "skip" as const,
      "handler" as const,
      "asyncHandler" as const,
    ),
    // ok, micro, slow: 0..6; the failures: 0..2 (all 0 means "ok"); a
    // third of the stages never fail.
    faults: fc.oneof(
      { weight: 1, arbitrary: fc.constant<number[]>([1, 1, 1, 0, 0, 0, 0, 0]) },
      {
        weight: 2,
        arbitrary: fc.tuple(
          fc.nat(6),
          fc.nat(6),
          fc.nat(6),
          fc.nat(2),
          fc.nat(2),
          fc.nat(2),
          fc.nat(2),
          fc.nat(2),
        ).map((t) => [...t]),
      },
    ),
    keepPct: fc.integer({ min: 30, max: 100 }),
    keyMod: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    adaptive: fc.option(fc.boolean(), { nil: undefined }),
  }, {
    requiredKeys: [
      "kind",
      "fns",
      "concurrency",
      "onError",
      "faults",
      "keepPct",
    ],
  });

const batchArb: fc.Arbitrary<BatchPlan> = fc.record({
  kind: fc.constant("batch" as const),
  maxSize: fc.integer({ min: 1, max: 5 }),
  maxWaitMs: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
  minSize: fc.integer({ min: 1, max: 5 }),
}, { requiredKeys: ["kind", "maxSize", "minSize"] });

const stageArb: fc.Arbitrary<StagePlan> = fc.oneof(
  { weight: 5, arbitrary: workArb("tag") },
  { weight: 2, arbitrary: workArb("fan") },
  { weight: 1, arbitrary: workArb("reshape") },
  { weight: 2, arbitrary: workArb("filter") },
  { weight: 3, arbitrary: batchArb },
  { weight: 2, arbitrary: fc.constant({ kind: "flatten" as const }) },
);

/** `arb` in `tenths` of the cases, else undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, tenths: number) =>
  fc.oneof(
    { weight: 10 - tenths, arbitrary: fc.constant(undefined) },
    { weight: tenths, arbitrary: arb },
  );

const sourceArb: fc.Arbitrary<SourcePlan> = fc.record({
  kind: fc.constantFrom(
    "array" as const,
    "sync" as const,
    "async" as const,
    "stream" as const,
    "thenable" as const,
  ),
  n: fc.integer({ min: 0, max: 30 }),
  throwAt: sometimes(fc.nat(30), 3),
  cleanup: fc.constantFrom("fast" as const, "slow" as const, "never" as const),
}, { requiredKeys: ["kind", "n", "cleanup"] });

const rawRunArb = fc.record({
  seed: fc.integer(),
  source: sourceArb,
  stages: fc.oneof(
    { weight: 1, arbitrary: fc.constant([]) },
    {
      weight: 19,
      arbitrary: fc.array(stageArb, { minLength: 1, maxLength: 5 }),
    },
  ),
  order: fc.constantFrom("input" as const, "completion" as const),
  bufferSize: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
  useId: fc.boolean(),
  progressMs: sometimes(fc.integer({ min: 1, max: 10 }), 2),
  consumer: fc.record({
    kind: fc.constantFrom(
      "iterate" as const,
      "iterate2" as const,
      "collect" as const,
      "readable" as const,
    ),
    leaveAt: sometimes(fc.integer({ min: 0, max: 12 }), 3),
    readDelay: sometimes(fc.integer({ min: 0, max: 3 }), 3),
  }, { requiredKeys: ["kind"] }),
  stop: fc.record({
    kind: fc.oneof(
      { weight: 5, arbitrary: fc.constant("none" as const) },
      { weight: 3, arbitrary: fc.constant("abort" as const) },
      { weight: 2, arbitrary: fc.constant("signal" as const) },
    ),
    when: fc.oneof(
      { weight: 1, arbitrary: fc.constant("before" as const) },
      { weight: 3, arbitrary: fc.constant("ms" as const) },
      { weight: 2, arbitrary: fc.constant("result" as const) },
      { weight: 2, arbitrary: fc.constant("call" as const) },
      { weight: 1, arbitrary: fc.constant("event" as const) },
    ),
    at: fc.integer({ min: 0, max: 30 }),
    reason: fc.boolean(),
  }),
}, {
  requiredKeys: [
    "seed",
    "source",
    "stages",
    "order",
    "useId",
    "consumer",
    "stop",
  ],
});

/** Random run plans, normalized (see {@linkcode normalize}). */
export const runPlanArb: fc.Arbitrary<RunPlan> = rawRunArb.map((raw) =>
  normalize(raw as RunPlan)
);

/**
 * Makes a raw plan valid: a flatten only where values are arrays (else
 * dropped), a fan-out only on leaves and a reshape only on arrays of leaves
 * (else a one-function map), minSize <=
 * maxSize, throwAt / cleanup only for sources that have them, a consumer
 * without results (collect) stopped at a call instead of a result.
 */
export function normalize(raw: RunPlan): RunPlan {
  const stages: StagePlan[] = [];
  let depth = 0;
  for (const st of raw.stages) {
    if (st.kind === "flatten") {
      if (depth === 0) continue;
      depth--;
      stages.push(st);
    } else if (st.kind === "batch") {
      depth++;
      stages.push({ ...st, minSize: Math.min(st.minSize, st.maxSize) });
    } else if (
      (st.kind === "fan" && depth > 0) || (st.kind === "reshape" && depth !== 1)
    ) {
      stages.push({ ...st, kind: "tag" });
    } else {
      if (st.kind === "fan") depth++;
      stages.push(st);
    }
  }
  const source: SourcePlan = { ...raw.source };
  if (source.kind === "array") source.throwAt = undefined;
  if (source.throwAt !== undefined && source.throwAt > source.n) {
    source.throwAt = source.n;
  }
  if (source.kind === "array" || source.kind === "sync") {
    source.cleanup = "fast";
  }
  const consumer = { ...raw.consumer };
  if (consumer.kind === "collect") {
    consumer.leaveAt = consumer.readDelay = undefined;
  }
  const stop = { ...raw.stop };
  if (stop.kind === "none") Object.assign(stop, { when: "before", at: 0 });
  if (stop.when !== "before" && stop.when !== "ms") {
    stop.at = Math.max(1, stop.at);
  }
  if (stop.when === "result" && consumer.kind === "collect") stop.when = "call";
  return { ...raw, stages, source, consumer, stop };
}

/** Whether a stage may hang: only when a timeout or a timed stop ends it. */
export function mayHang(plan: RunPlan, st: WorkPlan): boolean {
  return st.timeoutMs !== undefined ||
    (plan.stop.kind !== "none" && plan.stop.when === "ms");
}

/** The array depth of the values entering each stage, and of the results. */
export function depths(stages: readonly StagePlan[]): number[] {
  const out = [0];
  for (const st of stages) {
    const d = out[out.length - 1];
    out.push(
      st.kind === "batch" || st.kind === "fan"
        ? d + 1
        : st.kind === "flatten"
        ? d - 1
        : d,
    );
  }
  return out;
}

/**
 * Whether results' weights follow from their values alone. ARCHITECTURE.md:
 * "a batch weighs the sum of its members; flatten splits its token's weight
 * equally among the elements". A value carries its members' own weights, so
 * this holds unless a batch whose members may weigh differently (after a
 * fan-out was flattened, or a nested batch) is flattened again.
 */
export function weightsFollowValues(stages: readonly StagePlan[]): boolean {
  let one = true; // every token weighs exactly 1
  const levels: { fan: boolean; membersOne: boolean; single: boolean }[] = [];
  for (const st of stages) {
    if (st.kind === "batch") {
      levels.push({ fan: false, membersOne: one, single: st.maxSize === 1 });
      one = one && st.maxSize === 1;
    } else if (st.kind === "fan") {
      levels.push({ fan: true, membersOne: one, single: false });
    } else if (st.kind === "reshape") {
      levels[levels.length - 1] = { fan: true, membersOne: one, single: false };
    } else if (st.kind === "flatten") {
      const level = levels.pop()!;
      if (level.fan) one = false;
      else {
        if (!level.single && !level.membersOne) return false;
        one = level.membersOne;
      }
    }
  }
  return true;
}

// ---- hashing -------------------------------------------------------------

/** FNV-1a over the parts: the plan's deterministic decisions. */
export function hash(...parts: readonly (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const s = String(part);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x2c;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** A seeded random source in [0, 1) (retry jitter): the shared mulberry32. */
export const seededRandom = prng;

/** Picks an index by weights (all zero: 0). */
export function pick(weights: readonly number[], h: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let r = h % total;
  for (let i = 0; i < weights.length; i++) {
    if (r < weights[i]) return i;
    r -= weights[i];
  }
  return 0;
}

// ---- values --------------------------------------------------------------

export interface Leaf {
  readonly k: readonly number[];
  readonly t: readonly string[];
  readonly w: number;
  readonly ix?: number;
}
export interface FanInfo {
  /** The parent's key (a fan-out) or none (a reshape). */
  readonly k: readonly number[];
  /** The parent's weight and index. */
  readonly w: number;
  readonly ix: number;
  /** The indices of the members of the batch it was made of, if any. */
  readonly m?: readonly number[];
}
export type Val = Leaf | Val[];
type FanArray = Val[] & { fan?: FanInfo };

/** The weight of one source item (README: shares in whole units of 2^-20). */
export const UNIT = 2 ** 20;

/** Element `j`'s share of weight `w` split `n` ways in whole units. */
export function shareOf(w: number, n: number, j: number): number {
  const base = Math.floor(w / n);
  return j < w - base * n ? base + 1 : base;
}

export function leaf(i: number): Leaf {
  return { k: [i], t: [], w: UNIT };
}

export function isLeaf(v: unknown): v is Leaf {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    Array.isArray((v as Leaf).k);
}

export function fanOf(v: Val): FanInfo | undefined {
  return Array.isArray(v) ? (v as FanArray).fan : undefined;
}

/** Whether `v` is a value of this suite with `depth` array levels. */
export function wellFormed(v: unknown, depth: number): boolean {
  if (depth === 0) return isLeaf(v);
  if (!Array.isArray(v)) return false;
  if (v.length === 0 && fanOf(v) === undefined) return false; // empty batch
  return v.every((x) => wellFormed(x, depth - 1));
}

/**
 * The ctx.index of the token carrying `v`: a source item's position; a
 * batch's first member's; a flattened batch's element: its own member's
 * (README "Decisions"); an element of a fan-out or of a batch whose length a
 * map changed: its parent's.
 */
export function indexOf(v: Val): number {
  if (!Array.isArray(v)) return v.ix ?? v.k[0];
  const fan = fanOf(v);
  return fan !== undefined ? fan.ix : indexOf(v[0]);
}

/** A string naming the value's content (keys, not trails). */
export function keyOf(v: Val): string {
  if (!Array.isArray(v)) return v.k.join(".");
  const fan = fanOf(v);
  const inner = v.map(keyOf).join(",");
  return fan !== undefined ? `F${fan.k.join(".")}(${inner})` : `[${inner}]`;
}

/** The value with trails (for comparing two values). */
export function showVal(v: Val): string {
  if (!Array.isArray(v)) return `${v.k.join(".")}<${v.t.join(" ")}>`;
  const fan = fanOf(v);
  const inner = v.map(showVal).join(",");
  return fan !== undefined ? `F${fan.k.join(".")}(${inner})` : `[${inner}]`;
}

export function leavesOf(v: Val, into: Leaf[] = []): Leaf[] {
  if (!Array.isArray(v)) into.push(v);
  else for (const x of v) leavesOf(x, into);
  return into;
}

/** Weight in UNITs: a leaf's or fan-out's own, a batch its members'. */
export function weightOf(v: Val): number {
  if (!Array.isArray(v)) return v.w;
  const fan = fanOf(v);
  return fan !== undefined ? fan.w : v.reduce((a, x) => a + weightOf(x), 0);
}

/** A map function's output: every leaf gets `mark` on its trail. */
export function tag(v: Val, mark: string): Val {
  if (!Array.isArray(v)) return { ...v, t: [...v.t, mark] };
  const out: FanArray = v.map((x) => tag(x, mark));
  const fan = fanOf(v);
  if (fan !== undefined) out.fan = fan;
  return out;
}

/** How many elements a fan-out stage `s` makes of the leaf with key `k`. */
export function fanLength(seed: number, s: number, k: readonly number[]) {
  return hash(seed, s, "fan", k.join(".")) % 4;
}

/** A fan-out stage's output for a leaf: 0..3 elements, each marked. */
export function fanOut(seed: number, s: number, v: Leaf, mark: string): Val {
  const n = fanLength(seed, s, v.k);
  const ix = indexOf(v);
  const out: FanArray = [];
  for (let j = 0; j < n; j++) {
    const k = [...v.k, j];
    out.push({
      k,
      t: [...v.t, mark],
      w: shareOf(v.w, n, j),
      ...ixUnless(k, ix),
    });
  }
  out.fan = { k: v.k, w: v.w, ix };
  return out;
}

/** How many copies a reshape stage `s` makes of the leaf with key `k`. */
export function copies(seed: number, s: number, k: readonly number[]) {
  return [0, 1, 1, 2][hash(seed, s, "copies", k.join(".")) % 4];
}

/**
 * A reshape stage's output for an array of leaves: 0..2 copies of each (two
 * copies get keys `k.0`, `k.1`). Its elements' indices once flattened: the
 * batch members' when as many as the batch had (README "Decisions"), else
 * the parent's.
 */
export function reshape(seed: number, s: number, v: Val[], mark: string): Val {
  const m = fanOf(v)?.m ??
    (fanOf(v) === undefined ? v.map(indexOf) : undefined);
  const made: { k: number[]; from: Leaf }[] = [];
  for (const from of v as Leaf[]) {
    const c = copies(seed, s, from.k);
    if (c === 1) made.push({ k: [...from.k], from });
    if (c === 2) {
      made.push({ k: [...from.k, 0], from }, { k: [...from.k, 1], from });
    }
  }
  const w = weightOf(v);
  const ix = indexOf(v);
  const out: FanArray = made.map(({ k, from }, i) => {
    const at = m !== undefined && m.length === made.length ? m[i] : ix;
    return {
      k,
      t: [...from.t, mark],
      w: shareOf(w, made.length, i),
      ...ixUnless(k, at),
    };
  });
  out.fan = { k: [], w, ix, m };
  return out;
}

function ixUnless(k: readonly number[], ix: number): { ix?: number } {
  return ix === k[0] ? {} : { ix };
}

/** A filter's verdict on `v` (a truthy or falsy value of several kinds). */
export function verdict(seed: number, s: number, keepPct: number, v: Val) {
  const h = hash(seed, s, "keep", keyOf(v));
  const keep = h % 100 < keepPct;
  switch ((h >>> 8) % 3) {
    case 0:
      return keep;
    case 1:
      return keep ? 1 : 0;
    default:
      return keep ? "yes" : "";
  }
}

export function compareKeys(a: readonly number[], b: readonly number[]) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** Every result key source item `i` can give (fan-outs, reshapes), in order. */
export function keysOfItem(
  seed: number,
  stages: readonly StagePlan[],
  i: number,
): number[][] {
  let keys: number[][] = [[i]];
  stages.forEach((st, s) => {
    if (st.kind === "fan") {
      keys = keys.flatMap((k) =>
        Array.from({ length: fanLength(seed, s, k) }, (_, j) => [...k, j])
      );
    } else if (st.kind === "reshape") {
      keys = keys.flatMap((k) =>
        [[], [k], [[...k, 0], [...k, 1]]][copies(seed, s, k)]
      );
    }
  });
  return keys;
}

/**
 * Whether a leaf's trail shows every map stage once, in order: its functions'
 * marks (`<s>a`, `<s>b`, … for a map, `<s>f` for a fan-out, `<s>r` for a
 * reshape) or `<s>!` (an
 * onError substitute).
 */
export function trailIsComplete(
  stages: readonly StagePlan[],
  t: readonly string[],
): boolean {
  const want: string[][] = [];
  stages.forEach((st, s) => {
    if (st.kind === "tag") want.push(marks(s, st.fns));
    else if (st.kind === "fan") want.push([`${s}f`]);
    else if (st.kind === "reshape") want.push([`${s}r`]);
  });
  let at = 0;
  for (const expected of want) {
    const sub = expected[0].replace(/[a-z]$/, "!");
    if (t[at] === sub) at++;
    else {
      for (const m of expected) if (t[at++] !== m) return false;
    }
  }
  return at === t.length;
}

/** The trail marks of a map stage's functions: `<s>a`, `<s>b`, … */
export function marks(s: number, fns: number): string[] {
  return Array.from({ length: fns }, (_, f) => `${s}${"abc"[f]}`);
}
