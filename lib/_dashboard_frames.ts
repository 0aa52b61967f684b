// The frames of `dashboard()`: pure functions from stats to lines of text, no
// I/O and no clock, so that the same snapshot always gives the same frame.
import { formatProgress } from "./progress.ts";
import type { PoolStats } from "./pool_stats.ts";
import type {
  AdaptiveStats,
  FlowStats,
  LatencyStats,
  StageStats,
} from "./stats.ts";

/** How much a dashboard shows: see `DashboardOptions.level`. */
export type DashboardLevel = "compact" | "detailed" | "full";

/** One row of the detailed view: a stage of a flow, or a pool. */
export interface Row {
  readonly name: string;
  /** `"work"`: map, filter or pool (worker slots); else batch or flatten. */
  readonly kind: "work" | "batch" | "flatten";
  readonly concurrency: number;
  readonly busy: number;
  /** Waiting for a worker (for a batch: the items of the forming batch). */
  readonly queued: number;
  readonly backingOff: number;
  readonly completed: number;
  readonly failed: number;
  readonly latency: LatencyStats;
  readonly throughput: number;
  readonly adaptive?: AdaptiveStats;
}

/** One failure shown by the full view. */
export interface FailureEntry {
  /** Stage name, or the pool's label. */
  readonly where: string;
  /** `item <id>` or `task <id>`. */
  readonly what: string;
  readonly error: unknown;
  readonly attempts: number;
}

/** What a frame is drawn from. */
export interface FrameInput {
  readonly stats: FlowStats;
  readonly rows: readonly Row[];
  /** Failures so far (an exact count), and the last few of them. */
  readonly failed: number;
  readonly recent: readonly FailureEntry[];
}

/** The settings of a frame. */
export interface FrameSettings {
  readonly level: DashboardLevel;
  readonly total: number | undefined;
  readonly label: string | undefined;
  readonly width: number;
  readonly extra: (() => string) | undefined;
}

/** A pool's figures as `FlowStats` (tasks as items, failed ones settled). */
export function poolFlowStats(p: PoolStats, done: boolean): FlowStats {
  return {
    elapsedMs: p.elapsedMs,
    itemsIn: p.submitted,
    itemsOut: p.completed,
    failed: p.failed,
    // A failed task is settled: counted done, shown once as "N failed".
    skipped: p.failed,
    filtered: 0,
    cancelled: p.cancelled,
    inFlight: p.active + p.pending,
    results: p.completed,
    running: p.active,
    done,
    latency: p.latency,
    stages: [],
  };
}

/** A stage's row. */
export function stageRow(s: StageStats): Row {
  return {
    ...s,
    kind: s.kind === "batch" || s.kind === "flatten" ? s.kind : "work",
  };
}

/** A pool's row, named `name`. */
export function poolRow(p: PoolStats, name: string): Row {
  return {
    name,
    kind: "work",
    concurrency: p.concurrency,
    busy: p.active,
    queued: p.queued,
    backingOff: p.backingOff,
    completed: p.completed,
    failed: p.failed,
    latency: p.latency,
    throughput: p.throughput,
    adaptive: p.adaptive,
  };
}

/** The compact line: `formatProgress()`, plus `extra()` when it fits. */
export function compactLine(stats: FlowStats, s: FrameSettings): string {
  let line = formatProgress(stats, {
    total: s.total,
    label: s.label,
    maxLength: s.width,
  });
  const more = s.extra?.() ?? "";
  if (more !== "" && length(line) + length(more) <= s.width) line += more;
  return clean(line);
}

/**
 * The lines of a frame, none longer than `width` (cut, ending with `…`) and
 * none holding a control character (each becomes a space), so that a redraw
 * never wraps and an error message cannot move the cursor.
 */
export function renderFrame(input: FrameInput, s: FrameSettings): string[] {
  const lines = [compactLine(input.stats, s)];
  if (s.level !== "compact") {
    lines.push(HEADER);
    for (const row of input.rows) lines.push(rowLine(row));
  }
  if (s.level === "full") {
    const { failed, recent } = input;
    lines.push(
      failed === 0
        ? "failures: none"
        : `failures: ${failed}${
          recent.length < failed ? ` (last ${recent.length})` : ""
        }`,
    );
    for (let i = recent.length - 1; i >= 0; i--) {
      lines.push(failureLine(recent[i]));
    }
  }
  return lines.map((line) => cut(clean(line), s.width));
}

// Columns of the detailed view: name, workers, queued, done, p50, p95, rate.
const NAME = 11;
const WORKERS = 16;
const GLYPHS = 10;

function columns(
  name: string,
  workers: string,
  queued: string,
  done: string,
  p50: string,
  p95: string,
  rate: string,
): string {
  const n = length(name) < NAME ? name : cut(name, NAME - 1);
  return n.padEnd(NAME) + workers.padEnd(WORKERS) + queued.padStart(6) +
    done.padStart(7) + p50.padStart(7) + p95.padStart(7) + rate.padStart(9);
}

const HEADER = /* @__PURE__ */ columns(
  "stage",
  "workers",
  "queued",
  "done",
  "p50",
  "p95",
  "rate",
);

/** `▮▮▮▯ 3/4`: one glyph per slot (at most 10, scaled above), busy filled. */
function workers(busy: number, concurrency: number): string {
  const slots = Math.max(busy, concurrency);
  const cells = Math.min(slots, GLYPHS);
  const filled = slots <= GLYPHS
    ? busy
    : busy === 0
    ? 0
    : Math.min(cells, Math.max(1, Math.round(busy * cells / slots)));
  return `${"▮".repeat(filled)}${
    "▯".repeat(cells - filled)
  } ${busy}/${concurrency}`;
}

function rowLine(r: Row): string {
  const latency = r.kind !== "flatten" && r.latency.count > 0;
  const line = columns(
    r.name,
    r.kind === "work"
      ? workers(r.busy, r.concurrency)
      : r.kind === "batch"
      ? "forming batch"
      : "flatten",
    String(r.queued),
    String(r.completed),
    latency ? ms(r.latency.p50) : "-",
    latency ? ms(r.latency.p95) : "-",
    rate(r.throughput),
  );
  const notes: string[] = [];
  if (r.backingOff > 0) notes.push(`${r.backingOff} retrying`);
  if (r.failed > 0) notes.push(`${r.failed} failed`);
  if (r.adaptive) {
    const { limit, min, max } = r.adaptive;
    notes.push(`limit ${limit} (${min}-${max})`);
  }
  return notes.length === 0 ? line : `${line}  ${notes.join(" · ")}`;
}

function failureLine(f: FailureEntry): string {
  const tries = f.attempts > 1 ? ` (${f.attempts} attempts)` : "";
  return `  ${f.where} ${f.what}${tries}: ${describe(f.error)}`;
}

/** An error's first line: `Name: message`, or the value as text. */
function describe(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = `${error.name}: ${error.message}`;
  else if (typeof error === "string") text = error;
  else {
    try {
      text = JSON.stringify(error) ?? String(error);
    } catch {
      text = String(error);
    }
  }
  return text.split("\n", 1)[0];
}

/** `0.25ms`, `4.2ms`, `48ms`, `1.2s`, `75s`. */
function ms(v: number): string {
  if (v < 1) return `${v.toFixed(2)}ms`;
  if (v < 10) return `${v.toFixed(1)}ms`;
  if (v < 1000) return `${Math.round(v)}ms`;
  if (v < 100_000) return `${(v / 1000).toFixed(1)}s`;
  return `${Math.round(v / 1000)}s`;
}

/** `21.3/s` below 100 per second, `250/s` above (as `formatProgress`). */
function rate(perSecond: number): string {
  const tenths = Math.round(perSecond * 10) / 10;
  return `${tenths < 100 ? tenths.toFixed(1) : Math.round(perSecond)}/s`;
}

function length(text: string): number {
  return Array.from(text).length;
}

function cut(line: string, width: number): string {
  const chars = Array.from(line);
  return chars.length <= width
    ? line
    : chars.slice(0, width - 1).join("") + "…";
}

// C0 and C1 controls (ESC, CR, tab, …): a space each.
// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

function clean(line: string): string {
  return line.replace(CONTROLS, " ");
}
