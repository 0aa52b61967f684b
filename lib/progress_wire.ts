// The compact shape of `progress` events: what a dashboard shows of a
// `FlowStats`, as one flat vector of rounded numbers, sent whole (a keyframe)
// or as the figures that changed since the previous event (a delta).
//
// The same decoder exists as plain JavaScript in web/sluice-dashboard.js
// (no build step there); tests/progress_wire_test.ts checks that they agree.

import type { FlowStats, LatencyStats, StageStats } from "./stats.ts";
import { show } from "./_validate.ts";

/** Latency figures kept on the wire, in ms (rounded: 0.1 ms below 100 ms). */
export type WireLatency = Pick<
  LatencyStats,
  "count" | "p50" | "p95" | "p99" | "max"
>;

/**
 * One stage in a {@linkcode ProgressSnapshot}: its {@linkcode StageStats}
 * with the wire's latency, queue wait and worker states (throughput to 0.1).
 */
export interface ProgressStageSnapshot
  extends Omit<StageStats, "latency" | "queueWait" | "workers" | "adaptive"> {
  /** Time per successful call. */
  readonly latency: WireLatency;
  /** Time from reaching the stage to a worker starting on it (p50, p95). */
  readonly queueWait: { readonly p50: number; readonly p95: number };
  /**
   * One entry per worker slot used so far, `true` while busy (slots past the
   * 52nd are left out: `busy` still counts them).
   */
  readonly workers: readonly boolean[];
}

/**
 * What a dashboard shows of a run: {@linkcode FlowStats} without worker
 * item ids, `avg`/`min`, adaptive history, with figures rounded (counts
 * exact; ms to 0.1 below 100 ms, else to 1).
 */
export interface ProgressSnapshot
  extends Omit<FlowStats, "latency" | "stages"> {
  /** Time from reading an item to the consumer taking its result. */
  readonly latency: WireLatency;
  /** Per-stage figures, in pipeline order. */
  readonly stages: readonly ProgressStageSnapshot[];
}

/**
 * A compact `progress` event, JSON-ready. A keyframe carries the stage names
 * (`s`), their kinds as one letter each (`k`: `m`ap, `f`ilter, `b`atch,
 * fla`x`ten) and every figure (`v`: 16 for the run, then 19 per stage); a
 * delta (`d`) carries `index, value` pairs of the figures of `v` that changed.
 */
export type ProgressWire =
  | { readonly s: readonly string[]; readonly k: string; readonly v: number[] }
  | { readonly d: number[] };

/** Figures of the run at the head of the vector. */
const RUN_FIGURES = 16;
/** Figures of each stage after them. */
const STAGE_FIGURES = 19;
/** Worker slots carried in a stage's busy mask (exact in a double). */
const MASK_SLOTS = 52;
const KINDS: Record<StageStats["kind"], string> = {
  map: "m",
  filter: "f",
  batch: "b",
  flatten: "x",
};
const KIND_NAMES: Record<string, StageStats["kind"]> = {
  m: "map",
  f: "filter",
  b: "batch",
  x: "flatten",
};

/** A duration or rate, rounded: to 0.1 below 100, else to a whole number. */
function fig(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
}

function latencyFigures(l: WireLatency): number[] {
  return [l.count, fig(l.p50), fig(l.p95), fig(l.p99), fig(l.max)];
}

/** The flat vector of a run's figures. */
function vectorOf(stats: FlowStats | ProgressSnapshot): number[] {
  const v = [
    Math.round(stats.elapsedMs),
    stats.itemsIn,
    stats.itemsOut,
    stats.failed,
    stats.skipped,
    stats.filtered,
    stats.cancelled,
    stats.inFlight,
    stats.results,
    stats.running,
    stats.done ? 1 : 0,
    ...latencyFigures(stats.latency),
  ];
  for (const s of stats.stages) {
    let slots: number;
    let mask = 0;
    if (Array.isArray(s.workers) && typeof s.workers[0] === "boolean") {
      const busy = s.workers as readonly boolean[];
      slots = busy.length;
      for (let i = 0; i < Math.min(slots, MASK_SLOTS); i++) {
        if (busy[i]) mask += 2 ** i;
      }
    } else {
      slots = 0;
      for (const w of (s as StageStats).workers) {
        slots = Math.max(slots, w.workerId + 1);
        if (w.state === "busy" && w.workerId < MASK_SLOTS) {
          mask += 2 ** w.workerId;
        }
      }
    }
    v.push(
      s.concurrency,
      s.queued,
      s.inFlight,
      s.busy,
      s.backingOff,
      s.completed,
      s.failed,
      s.skipped,
      s.retried,
      fig(s.throughput),
      ...latencyFigures(s.latency),
      fig(s.queueWait.p50),
      fig(s.queueWait.p95),
      slots,
      mask,
    );
  }
  return v;
}

function latencyAt(v: readonly number[], i: number): WireLatency {
  return {
    count: v[i],
    p50: v[i + 1],
    p95: v[i + 2],
    p99: v[i + 3],
    max: v[i + 4],
  };
}

/** The snapshot of a vector whose stages are `names` of `kinds`. */
function snapshotOf(
  names: readonly string[],
  kinds: string,
  v: readonly number[],
): ProgressSnapshot {
  const stages = names.map((name, n): ProgressStageSnapshot => {
    const i = RUN_FIGURES + n * STAGE_FIGURES;
    const slots = v[i + 17];
    const mask = v[i + 18];
    const workers: boolean[] = [];
    for (let w = 0; w < Math.min(slots, MASK_SLOTS); w++) {
      workers.push(Math.floor(mask / 2 ** w) % 2 === 1);
    }
    return {
      name,
      kind: KIND_NAMES[kinds[n]] ?? "map",
      concurrency: v[i],
      queued: v[i + 1],
      inFlight: v[i + 2],
      busy: v[i + 3],
      backingOff: v[i + 4],
      completed: v[i + 5],
      failed: v[i + 6],
      skipped: v[i + 7],
      retried: v[i + 8],
      throughput: v[i + 9],
      latency: latencyAt(v, i + 10),
      queueWait: { p50: v[i + 15], p95: v[i + 16] },
      workers,
    };
  });
  return {
    elapsedMs: v[0],
    itemsIn: v[1],
    itemsOut: v[2],
    failed: v[3],
    skipped: v[4],
    filtered: v[5],
    cancelled: v[6],
    inFlight: v[7],
    results: v[8],
    running: v[9],
    done: v[10] === 1,
    latency: latencyAt(v, 11),
    stages,
  };
}

/**
 * Encodes a run's stats as a compact `progress` event: a keyframe (every
 * figure and the stage names) when `previous` is not given or its stages
 * differ, else a delta holding only the figures that changed since
 * `previous` (the stats of the last event the client received). A stream
 * sends a keyframe first, then deltas, and a keyframe again now and then, so
 * a client that joins or reconnects mid-run recovers (`toSSE` sends one
 * every 10th event). Pure: it keeps no state.
 *
 * @param stats The stats to send (`flow.stats()`).
 * @param previous The stats of the previous event sent on this stream.
 * @returns The event's data, ready for `JSON.stringify`.
 * @throws {TypeError} When `stats` is not a `FlowStats`.
 *
 * @example A keyframe, then a delta
 * ```ts
 * import { map, pipeline } from "sluice";
 * import { fromWire, toWire } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const flow = pipeline(map(async (x: number) => x, { name: "double" }))
 *   .run([1, 2, 3]);
 * const first = flow.stats();
 * const key = toWire(first);
 * assert.ok("s" in key && key.s[0] === "double");
 * await flow.collect();
 * const delta = toWire(flow.stats(), first);
 * assert.ok("d" in delta);
 * const snapshot = fromWire(delta, fromWire(key));
 * assert.equal(snapshot?.itemsOut, 3);
 * assert.equal(snapshot?.stages[0].completed, 3);
 * ```
 */
export function toWire(
  stats: FlowStats,
  previous?: FlowStats,
): ProgressWire {
  if (
    typeof stats !== "object" || stats === null ||
    !Array.isArray(stats.stages)
  ) {
    throw new TypeError(
      `'stats' must be the FlowStats of a run: current value is ${show(stats)}`,
    );
  }
  const stages: readonly StageStats[] = stats.stages;
  const v = vectorOf(stats);
  if (previous && sameStages(stats, previous)) {
    const before = vectorOf(previous);
    const d: number[] = [];
    for (let i = 0; i < v.length; i++) {
      if (v[i] !== before[i]) d.push(i, v[i]);
    }
    return { d };
  }
  return {
    s: stages.map((s) => s.name),
    k: stages.map((s) => KINDS[s.kind] ?? "m").join(""),
    v,
  };
}

function sameStages(a: FlowStats, b: FlowStats): boolean {
  if (a.stages.length !== b.stages.length) return false;
  return a.stages.every((s, i) =>
    s.name === b.stages[i].name && s.kind === b.stages[i].kind
  );
}

/**
 * Decodes a compact `progress` event (the parsed JSON of its data) into a
 * {@linkcode ProgressSnapshot}: a keyframe on its own, a delta on top of the
 * snapshot of the previous event. A delta with no `previous` (a client that
 * joined between keyframes) gives `undefined`: wait for the next keyframe.
 * The browser element `web/sluice-dashboard.js` holds the same decoder.
 *
 * @param wire The event's data, parsed.
 * @param previous The snapshot decoded from the previous event.
 * @returns The snapshot, or `undefined` for a delta that cannot be applied.
 * @throws {TypeError} When `wire` is neither a keyframe nor a delta.
 *
 * @example Decoding a stream of events
 * ```ts
 * import { map, pipeline } from "sluice";
 * import { fromWire, type ProgressSnapshot, toWire } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const flow = pipeline(map(async (x: number) => x)).run([1, 2]);
 * const sent = [flow.stats()];
 * await flow.collect();
 * sent.push(flow.stats());
 * let view: ProgressSnapshot | undefined;
 * for (const [i, stats] of sent.entries()) {
 *   const data = JSON.stringify(toWire(stats, sent[i - 1]));
 *   view = fromWire(JSON.parse(data), view);
 * }
 * assert.equal(view?.done, true);
 * assert.equal(fromWire({ d: [2, 5] }), undefined); // no keyframe yet
 * ```
 */
export function fromWire(
  wire: ProgressWire,
  previous?: ProgressSnapshot,
): ProgressSnapshot | undefined {
  const w = wire as { s?: unknown; k?: unknown; v?: unknown; d?: unknown };
  if (typeof w === "object" && w !== null) {
    if (
      Array.isArray(w.s) && typeof w.k === "string" && Array.isArray(w.v) &&
      w.v.length === RUN_FIGURES + w.s.length * STAGE_FIGURES
    ) {
      return snapshotOf(w.s as string[], w.k, w.v as number[]);
    }
    if (Array.isArray(w.d) && w.d.length % 2 === 0) {
      if (!previous) return undefined;
      const v = vectorOf(previous);
      for (let i = 0; i < w.d.length; i += 2) {
        const at = w.d[i];
        if (!(Number.isInteger(at) && at >= 0 && at < v.length)) {
          return undefined;
        }
        v[at] = w.d[i + 1];
      }
      return snapshotOf(
        previous.stages.map((s) => s.name),
        previous.stages.map((s) => KINDS[s.kind]).join(""),
        v,
      );
    }
  }
  throw new TypeError(
    `'wire' must be a progress keyframe ({ s, k, v }) or delta ({ d }): current value is ${
      show(wire)
    }`,
  );
}
