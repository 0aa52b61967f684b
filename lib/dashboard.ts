import { Flow, type ItemEventDetail } from "./flow.ts";
import { Pool } from "./pool.ts";
import type { PoolFailedDetail, PoolIdleDetail } from "./pool_stats.ts";
import type { FlowStats } from "./stats.ts";
import {
  type DashboardLevel,
  type FailureEntry,
  type FrameSettings,
  poolFlowStats,
  poolRow,
  renderFrame,
  type Row,
  stageRow,
} from "./_dashboard_frames.ts";
import {
  assertBoolean,
  assertDuration,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  show,
} from "./_validate.ts";

export type { DashboardLevel } from "./_dashboard_frames.ts";

/**
 * Anything with a `stats()` in the shape of {@linkcode FlowStats}: a run
 * that is not a sluice flow can be shown the same way (compact level; it
 * settles when `stats().done` is true).
 */
export interface StatsSource {
  /** The run's counters now. */
  stats(): FlowStats;
}

/** Options of {@linkcode dashboard}. */
export interface DashboardOptions {
  /**
   * Receives the text to show: on a TTY, each frame with the ANSI sequences
   * that redraw it in place; otherwise the one summary line, ending with
   * `"\n"`. Called synchronously; `dashboard()` itself prints nothing.
   */
  write: (text: string) => void;
  /**
   * `"compact"`: one line (bar, %, rate, eta: `formatProgress()`).
   * `"detailed"`: adds a header and one row per stage (or one for a pool):
   * workers busy/idle (`▮▮▯▯ 2/4`; one glyph per slot, scaled to 10 above
   * 10 slots), queued (for a batch: the items of the forming batch), items
   * done, p50 and p95 latency, throughput, then retrying and failed counts
   * and an adaptive stage's current limit (`limit 8 (2-16)`).
   * `"full"`: adds the failures: their count, and the last `maxFailures`
   * (where, which item, attempts, the error's first line), newest first.
   *
   * @default {"compact"}
   */
  level?: DashboardLevel;
  /**
   * Whether `write` goes to a terminal (`Deno.stdout.isTerminal()`,
   * `process.stdout.isTTY`): then frames are redrawn in place every
   * `intervalMs`. Otherwise nothing is written while the run goes on, and one
   * summary line (the compact line) once it settles or `stop()` is called.
   *
   * @default {false}
   */
  isTTY?: boolean;
  /**
   * How often a frame is drawn on a TTY (and, for a pool or a
   * {@linkcode StatsSource}, how often it is checked for the end).
   *
   * @default {200}
   */
  intervalMs?: number;
  /**
   * Expected number of items (tasks, for a pool): gives the bar, the
   * percentage and the eta.
   *
   * @default {undefined}
   */
  total?: number;
  /**
   * Text at the start of the compact line.
   *
   * @default {the last stage's name for a flow, "pool" for a pool}
   */
  label?: string;
  /**
   * Longest line, in characters: longer lines are cut and end with `…`, so
   * a redraw never wraps. Use one less than the terminal's columns.
   *
   * @default {80}
   */
  width?: number;
  /**
   * How many of the latest failures the full level lists (older ones are
   * forgotten: the memory used is bounded).
   *
   * @default {5}
   */
  maxFailures?: number;
  /**
   * Text appended to the compact line (e.g. `" · $0.42 spent"`), left out
   * when the line would be longer than `width`.
   *
   * @default {undefined}
   */
  extra?: () => string;
  /** Stops the dashboard (as `stop()`) when it aborts. @default {undefined} */
  signal?: AbortSignal;
}

/** A running dashboard, from {@linkcode dashboard}. */
export interface Dashboard extends Disposable {
  /**
   * Stops now: clears the timer, removes the listeners and writes the last
   * frame (TTY) or the summary line (otherwise), once. Does nothing after
   * the first call or once the target has settled.
   */
  stop(): void;
  /** The frame for the target's state now: plain lines, no ANSI, no final `"\n"`. */
  frame(): string;
  /** Whether it has stopped (the target settled, or `stop()`). */
  readonly stopped: boolean;
  /** Same as `stop()`: `using dash = dashboard(...)`. */
  [Symbol.dispose](): void;
}

/** Move the cursor up `n` lines (to column 0 after a `"\n"`): `ESC [ n A`. */
const UP = (n: number) => `\x1b[${n}A`;
/** Erase the whole line the cursor is on: `ESC [ 2 K`. */
const ERASE_LINE = "\x1b[2K";
/** Erase from the cursor to the end of the screen: `ESC [ J`. */
const ERASE_BELOW = "\x1b[J";

const LEVELS: readonly DashboardLevel[] = ["compact", "detailed", "full"];
const KNOWN = [
  "write",
  "level",
  "isTTY",
  "intervalMs",
  "total",
  "label",
  "width",
  "maxFailures",
  "extra",
  "signal",
];

/**
 * Shows a run in a terminal: a live view of a {@linkcode Flow} or a
 * {@linkcode Pool} (or any {@linkcode StatsSource}) at one of three levels,
 * written through `options.write`, so nothing is printed by the library
 * itself and it works on every runtime.
 *
 * On a TTY (`isTTY: true`) the first frame is written at once and redrawn in
 * place every `intervalMs` (a frame identical to the last one is not
 * written again). A frame is its lines, each ending with `"\n"`; a redraw
 * starts with `ESC[nA` (the cursor up over the `n` lines of the last frame)
 * and writes each line after `ESC[2K` (erase the line), then `ESC[J` (erase
 * below) when it has fewer lines than the last one. Those three sequences are
 * all it uses. Lines are cut to `width` and control characters in them
 * (from stage names or error messages) become spaces, so a redraw never
 * wraps or moves the cursor elsewhere. Elsewhere (a file, a pipe, a log) it
 * writes nothing while the run goes on, and one summary line at the end.
 *
 * It stops by itself when the target settles: a flow when its run settles
 * (its final `progress` event: the figures are those of the settling
 * moment); a pool once it is closed and idle (`close()` and every task
 * settled, seen on its `idle` event or at the next interval); a
 * `StatsSource` when `stats().done`. Stopping clears its timer and removes
 * its listeners, then writes the last frame (TTY) or the summary line. A
 * dashboard started on a settled target draws its final output at once.
 *
 * Costs: one `stats()` snapshot per interval, a `progress` listener on a
 * flow (its `progress` timer runs until the run settles), an `idle` listener
 * on a pool, and at the full level a `failed` listener (which has every call
 * timed; a flow's failures before the dashboard started come from
 * `flow.failures`).
 *
 * @param target The flow, pool or stats source to show.
 * @param options The writer, level, TTY or not, interval, total, label,
 * width, failures kept, extra text and a signal.
 * @returns A {@linkcode Dashboard} handle: `stop()`, `frame()`, `stopped`.
 * @throws {TypeError} When `target` is not a Flow, Pool or stats source,
 * `options` not an object, an option unknown or of the wrong type (`write`
 * or `extra` not a function, `level` not one of the three, `isTTY` not a
 * boolean, `label` not a string, `signal` not an AbortSignal).
 * @throws {RangeError} When `intervalMs` is not a number of ms > 0, `total`
 * not an integer >= 0, `width` not an integer >= 20 or `maxFailures` not an
 * integer >= 0.
 *
 * @example A detailed view, redrawn in place
 * ```ts
 * import { dashboard, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const flow = pipeline(
 *   map((x: number) => x * 2, { name: "double", concurrency: 2 }),
 * ).run([1, 2, 3]);
 * let out = "";
 * const dash = dashboard(flow, {
 *   write: (text) => out += text,
 *   level: "detailed",
 *   isTTY: true,
 *   total: 3,
 * });
 * assert.deepEqual(await flow.collect(), [2, 4, 6]);
 * assert.equal(dash.stopped, true); // it stopped when the run settled
 * assert.match(dash.frame(), /^double 3\/3 ▕██████████▏ 100%/);
 * // stage, workers busy/idle, queued, done, p50, p95, rate
 * assert.match(dash.frame(), /\ndouble +▯▯ 0\/2 +0 +3 /);
 * assert.match(out, /\x1b\[3A/); // the final frame went up over the first
 * ```
 *
 * @example One summary line when the output is not a terminal
 * ```ts
 * import { dashboard, Pool } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const pool = new Pool({ concurrency: 2 });
 * const lines: string[] = [];
 * dashboard(pool, { write: (text) => lines.push(text), total: 2 });
 * const results = [pool.submit(async () => 1), pool.submit(async () => 2)];
 * assert.deepEqual(lines, []); // nothing while the pool works
 * await pool.close(); // drains: the line is written as the last task settles
 * assert.deepEqual(await Promise.all(results), [1, 2]);
 * assert.equal(lines.length, 1);
 * assert.match(lines[0], /^pool 2\/2 ▕██████████▏ 100% · .*\n$/);
 * ```
 */
export function dashboard(
  target: Flow<unknown> | Pool | StatsSource,
  options: DashboardOptions,
): Dashboard {
  if (
    typeof target !== "object" || target === null ||
    typeof (target as StatsSource).stats !== "function"
  ) {
    throw new TypeError(
      `'target' must be a Flow, a Pool or an object with stats(): current value is ${
        show(target)
      }`,
    );
  }
  if (options === undefined) {
    throw new TypeError(
      `'options' must be an object: current value is ${show(options)}`,
    );
  }
  assertOptions("options", options, "dashboard()", KNOWN);
  const {
    write,
    level = "compact",
    isTTY = false,
    intervalMs = 200,
    total,
    label,
    width = 80,
    maxFailures = 5,
    extra,
    signal,
  } = options;
  assertFunction("write", write);
  assertOneOf("level", level, LEVELS);
  assertBoolean("isTTY", isTTY);
  assertDuration("intervalMs", intervalMs, { positive: true });
  if (total !== undefined) assertInteger("total", total, 0);
  if (label !== undefined && typeof label !== "string") {
    throw new TypeError(
      `'label' must be a string: current value is ${show(label)}`,
    );
  }
  assertInteger("width", width, 20);
  assertInteger("maxFailures", maxFailures, 0);
  if (extra !== undefined) assertFunction("extra", extra);
  assertSignal(signal);

  const pool = target instanceof Pool ? target : undefined;
  const flow = target instanceof Flow ? target : undefined;
  const source = target as StatsSource;
  const settings: FrameSettings = {
    level,
    total,
    label: label ?? (pool ? "pool" : undefined),
    width,
    extra,
  };

  // The last `maxFailures` failures, oldest first; a flow's earlier ones
  // from `flow.failures` (skipped items).
  const recent: FailureEntry[] = [];
  const remember = (entry: FailureEntry) => {
    recent.push(entry);
    if (recent.length > maxFailures) recent.shift();
  };
  if (flow && level === "full" && maxFailures > 0) {
    for (const f of flow.failures.slice(-maxFailures)) {
      remember({
        where: f.stage,
        what: `item ${String(f.itemId)}`,
        error: f.error,
        attempts: f.attempts,
      });
    }
  }

  /** The lines of a frame; `settled`: a flow's figures at its end. */
  const lines = (settled?: FlowStats): string[] => {
    let stats: FlowStats;
    let rows: Row[] = [];
    let failed: number;
    if (pool) {
      const p = pool.stats();
      stats = poolFlowStats(p, poolDone());
      if (level !== "compact") rows = [poolRow(p, settings.label!)];
      failed = p.failed;
    } else {
      stats = settled ?? source.stats();
      if (level !== "compact") rows = stats.stages.map(stageRow);
      // Failed calls (a batch once), as the `failed` events count them.
      failed = stats.stages.reduce((sum, st) => sum + st.failed, 0);
    }
    return renderFrame({ stats, rows, failed, recent }, settings);
  };

  const poolDone = () =>
    pool!.closed && pool!.active === 0 && pool!.pending === 0;
  const isDone = () => pool ? poolDone() : source.stats().done;

  let drawn = 0; // lines of the last frame on screen
  let last = "";
  const draw = (settled?: FlowStats): void => {
    const frame = lines(settled);
    const text = frame.join("\n");
    if (drawn > 0 && text === last) return;
    last = text;
    write(
      drawn === 0
        ? `${text}\n`
        : UP(drawn) + frame.map((l) => `${ERASE_LINE}${l}\n`).join("") +
          (frame.length < drawn ? ERASE_BELOW : ""),
    );
    drawn = frame.length;
  };

  let stopped = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  const finish = (settled?: FlowStats): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    flow?.removeEventListener("progress", onProgress);
    flow?.removeEventListener("failed", onFlowFailed);
    pool?.removeEventListener("idle", onIdle);
    pool?.removeEventListener("failed", onPoolFailed);
    signal?.removeEventListener("abort", onAbort);
    if (isTTY) draw(settled);
    else write(`${lines(settled)[0]}\n`);
  };

  const onProgress = (e: CustomEvent<FlowStats>) => {
    if (e.detail.done) finish(e.detail);
  };
  const onFlowFailed = (e: CustomEvent<ItemEventDetail>) => {
    const d = e.detail;
    remember({
      where: d.stage,
      what: `item ${String(d.itemId)}`,
      error: d.error,
      attempts: d.attempt,
    });
  };
  const onIdle = (_: CustomEvent<PoolIdleDetail>) => {
    if (poolDone()) finish();
  };
  const onPoolFailed = (e: CustomEvent<PoolFailedDetail>) => {
    const d = e.detail;
    remember({
      where: settings.label!,
      what: `task ${d.taskId}`,
      error: d.error,
      attempts: d.attempt,
    });
  };
  const onAbort = () => finish();

  const handle: Dashboard = {
    stop: () => finish(),
    frame: () => lines().join("\n"),
    get stopped() {
      return stopped;
    },
    [Symbol.dispose]: () => finish(),
  };

  if (signal?.aborted || isDone()) {
    finish();
    return handle;
  }
  const full = level === "full" && maxFailures > 0;
  if (flow) {
    flow.addEventListener("progress", onProgress);
    if (full) flow.addEventListener("failed", onFlowFailed);
  } else if (pool) {
    pool.addEventListener("idle", onIdle);
    if (full) pool.addEventListener("failed", onPoolFailed);
  }
  signal?.addEventListener("abort", onAbort, { once: true });
  if (isTTY) draw();
  // A flow's end comes with its last `progress` event; off a TTY, only a
  // pool or a stats source needs the timer (to see its end).
  if (isTTY || !flow) {
    timer = setInterval(() => {
      if (isDone()) finish();
      else if (isTTY) draw();
    }, intervalMs);
  }
  return handle;
}
