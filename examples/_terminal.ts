// A one-line progress display for the examples (not part of the library).
// On a terminal: one line redrawn in place (`\r` + ANSI clear-line). Piped or
// redirected: a plain line at most every second, or at each quarter done.

/** What the progress line shows, read again at every redraw. */
export interface ProgressSnapshot {
  /** Results delivered to the consumer so far. */
  done: number;
  /** Calls running now. */
  inFlight: number;
  /** Calls finished but not delivered yet (waiting for an earlier item). */
  heldBack: number;
  /** Milliseconds since the run started. */
  elapsedMs: number;
}

/** Options of {@linkcode watchProgress}. */
export interface WatchOptions {
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

const encoder = new TextEncoder();
const CLEAR_LINE = "\r\x1b[2K";
const BAR_CELLS = 10;

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

function bar(fraction: number): string {
  const full = Math.round(fraction * BAR_CELLS);
  return `▕${"█".repeat(full)}${"░".repeat(BAR_CELLS - full)}▏`;
}

/**
 * Formats one progress line, e.g.
 * `input order  183/300 ▕██████░░░░▏  61% · 41.2/s · 10 in flight · 7 held · 2.1s`
 * (`held`: finished, waiting to be delivered). Fits 80 columns for labels of
 * up to 12 characters and totals up to 999.
 *
 * @param label What is running, padded to a fixed width.
 * @param total How many items the run has.
 * @param s The counters.
 * @returns The line, without a line break.
 */
export function formatProgress(
  label: string,
  total: number,
  s: ProgressSnapshot,
): string {
  const fraction = total === 0 ? 1 : Math.min(1, s.done / total);
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? s.done / seconds : 0;
  const width = String(total).length;
  let line = `${label.padEnd(12)} ${String(s.done).padStart(width)}/${total} ` +
    `${bar(fraction)} ${String(Math.floor(fraction * 100)).padStart(3)}% · ` +
    `${rate.toFixed(rate < 100 ? 1 : 0)}/s · ${s.inFlight} in flight`;
  if (s.heldBack > 0) line += ` · ${s.heldBack} held`;
  line += ` · ${seconds.toFixed(1)}s`;
  return line;
}

/** A running progress display; `stop()` draws the final line. */
export interface ProgressWatch {
  /** Stops redrawing and prints the final state on its own line. */
  stop(): void;
}

/**
 * Redraws a progress line from `read()` until `stop()` is called.
 *
 * @param label What is running.
 * @param total How many items the run has.
 * @param read Returns the current counters.
 * @param options Terminal or plain output.
 * @returns A handle whose `stop()` prints the final line.
 */
export function watchProgress(
  label: string,
  total: number,
  read: () => ProgressSnapshot,
  options: WatchOptions = {},
): ProgressWatch {
  const { tty = Deno.stdout.isTerminal(), plainEveryMs = 1000 } = options;
  const width = tty ? columns() - 1 : Infinity;
  let lastPrinted = -Infinity;
  let lastQuarter = 0;

  const draw = (final: boolean): void => {
    const s = read();
    const line = formatProgress(label, total, s);
    if (tty) {
      // Never wider than the terminal: a wrapped line cannot be redrawn.
      write(CLEAR_LINE + [...line].slice(0, width).join(""));
      if (final) write("\n");
      return;
    }
    // The 100 % line is the final one, printed once by stop().
    if (!final && s.done >= total) return;
    const quarter = total === 0 ? 4 : Math.floor((4 * s.done) / total);
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
