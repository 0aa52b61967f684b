// A one-line progress display for the examples (not part of the library).
// The line is sluice's own `formatProgress()`, plus a few fields of the
// example's when they fit. On a terminal: one line redrawn in place (`\r` +
// ANSI clear-line), never wider than the terminal. Piped or redirected: a
// plain line at most every second, or at each quarter done.
import { type FlowStats, formatProgress } from "../mod.ts";

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
   * Redraw in place (a terminal) or print plain lines.
   * @default {Deno.stdout.isTerminal()}
   */
  tty?: boolean;
  /**
   * Plain mode: at most one line this often (quarter marks print anyway).
   * @default {1000}
   */
  plainEveryMs?: number;
}

/** A running progress display; `stop()` draws the final line. */
export interface ProgressWatch {
  /** Stops redrawing and prints the final state on its own line. */
  stop(): void;
}

const encoder = new TextEncoder();
const CLEAR_LINE = "\r\x1b[2K";
/** Labels are padded to this width, so that the lines of several runs align. */
const LABEL_WIDTH = 12;

function write(text: string): void {
  const bytes = encoder.encode(text);
  let n = 0;
  while (n < bytes.length) n += Deno.stdout.writeSync(bytes.subarray(n));
}

function columns(): number {
  try {
    // A pseudo-terminal without a size reports 0 columns.
    const { columns } = Deno.consoleSize();
    return columns >= 20 ? columns : 80;
  } catch {
    return 80;
  }
}

const length = (text: string) => [...text].length;

/**
 * Counters of a run that is not a sluice flow, shaped as {@linkcode FlowStats}
 * so that `formatProgress()` can show it like the others.
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
 * Redraws a progress line from `read()` until `stop()` is called.
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
  const {
    label,
    total,
    extra,
    tty = Deno.stdout.isTerminal(),
    plainEveryMs = 1000,
  } = options;
  // One column short of the terminal: a line that reaches the last column may
  // wrap (on some terminals), and a wrapped line cannot be redrawn.
  const maxLength = tty ? columns() - 1 : Infinity;
  let lastPrinted = -Infinity;
  let lastQuarter = 0;

  const draw = (final: boolean): void => {
    const s = read();
    let line = formatProgress(s, {
      total,
      label: label.padEnd(LABEL_WIDTH),
      maxLength,
    });
    const more = extra?.(s) ?? "";
    if (length(line) + length(more) <= maxLength) line += more;
    if (tty) {
      write(CLEAR_LINE + line);
      if (final) write("\n");
      return;
    }
    // The 100 % line is the final one, printed once by stop().
    const done = s.itemsOut + s.skipped + s.filtered;
    if (!final && done >= total) return;
    const quarter = total === 0 ? 4 : Math.floor((4 * done) / total);
    if (
      final || s.elapsedMs - lastPrinted >= plainEveryMs ||
      quarter > lastQuarter
    ) {
      console.log(line);
      lastPrinted = s.elapsedMs;
      lastQuarter = quarter;
    }
  };

  draw(false);
  const timer = setInterval(() => draw(false), tty ? 80 : 100);
  return {
    stop() {
      clearInterval(timer);
      draw(true);
    },
  };
}
