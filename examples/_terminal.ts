// A progress display for the examples (not part of the library): sluice's
// `dashboard()`, writing to stdout. On a terminal it redraws in place, never
// wider than the terminal; piped or redirected, it prints one summary line
// when the run ends.
import {
  dashboard,
  type DashboardLevel,
  type DashboardOptions,
  type Flow,
  type FlowStats,
  type Pool,
  type StatsSource,
} from "../mod.ts";

/** Options of {@linkcode watchProgress}. */
export interface WatchOptions {
  /** What is running, at the start of the line. */
  label: string;
  /** How many items the run has. */
  total: number;
  /**
   * Fields to append, e.g. `" · 10 running"`; left out when the line would
   * not fit the terminal.
   */
  extra?: (stats: FlowStats) => string;
  /**
   * Redraw in place (a terminal) or print one line at the end.
   * @default {Deno.stdout.isTerminal()}
   */
  tty?: boolean;
}

/** A running progress display; `stop()` draws the final line. */
export interface ProgressWatch {
  /** Stops redrawing and prints the final state. */
  stop(): void;
}

const encoder = new TextEncoder();
/** Labels are padded to this width, so that the lines of several runs align. */
const LABEL_WIDTH = 12;

/** Writes all of `text` to stdout. */
export function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let n = 0;
  while (n < bytes.length) n += Deno.stdout.writeSync(bytes.subarray(n));
}

/**
 * One column short of the terminal: a line that reaches the last column may
 * wrap (on some terminals), and a wrapped line cannot be redrawn.
 */
export function terminalWidth(): number {
  try {
    // A pseudo-terminal without a size reports 0 columns.
    const { columns } = Deno.consoleSize();
    return columns >= 21 ? columns - 1 : 79;
  } catch {
    return 79;
  }
}

/**
 * A `dashboard()` of `target` on stdout, sized to the terminal.
 *
 * @param target A flow, a pool or a stats source.
 * @param level How much to show.
 * @param options More options of `dashboard()`.
 * @returns The dashboard's handle.
 */
export function terminalDashboard(
  target: Flow<unknown> | Pool | StatsSource,
  level: DashboardLevel,
  options: Omit<DashboardOptions, "write" | "level"> = {},
): ReturnType<typeof dashboard> {
  const isTTY = options.isTTY ?? Deno.stdout.isTerminal();
  return dashboard(target, {
    write: writeStdout,
    level,
    width: isTTY ? terminalWidth() : 80,
    ...options,
    isTTY,
  });
}

/**
 * Counters of a run that is not a sluice flow, shaped as {@linkcode FlowStats}
 * so that `dashboard()` can show it like the others.
 *
 * @param c Items read and delivered, calls running, elapsed time, settled.
 * @returns A `FlowStats` with no stages and no latency figures.
 */
export function plainStats(c: {
  elapsedMs: number;
  itemsIn: number;
  itemsOut: number;
  running: number;
  done: boolean;
}): FlowStats {
  const none = { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  return {
    ...c,
    failed: 0,
    skipped: 0,
    filtered: 0,
    cancelled: 0,
    inFlight: c.itemsIn - c.itemsOut,
    results: c.itemsOut,
    latency: none,
    stages: [],
  };
}

/**
 * Shows a progress line from `read()` (a compact `dashboard()`) until
 * `stop()` is called.
 *
 * @param read Returns the run's counters (`flow.stats()`, or
 * {@linkcode plainStats}).
 * @param options Label, total, extra fields, terminal or plain output.
 * @returns A handle whose `stop()` prints the final line.
 */
export function watchProgress(
  read: () => FlowStats,
  options: WatchOptions,
): ProgressWatch {
  const { label, total, extra, tty } = options;
  let last: FlowStats | undefined;
  const stats = () => (last = read());
  return terminalDashboard({ stats }, "compact", {
    label: label.padEnd(LABEL_WIDTH),
    total,
    isTTY: tty,
    intervalMs: 80,
    // The stats of the frame being drawn (read just before).
    extra: extra && (() => extra(last ?? read())),
  });
}
