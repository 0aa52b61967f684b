import type { FlowStats } from "./stats.ts";
import { assertInteger, assertOptions } from "./_validate.ts";

/** Options of {@linkcode formatProgress}. */
export interface ProgressOptions {
  /**
   * Expected number of input items. Without it the line has no bar,
   * percentage or eta, and shows the elapsed time instead.
   *
   * @default {undefined}
   */
  total?: number;
  /**
   * Text at the start of the line (none when empty).
   *
   * @default {the name of the last stage, or "flow" when there is none}
   */
  label?: string;
  /**
   * Bar width in cells.
   *
   * @default {10}
   */
  width?: number;
  /**
   * Longest line, in characters; a longer line is cut and ends with `…`.
   *
   * @default {Infinity}
   */
  maxLength?: number;
}

/**
 * Formats a {@linkcode FlowStats} snapshot as one line of text for a terminal
 * progress display. Pure: no I/O, and the same input gives the same line.
 *
 * Done items are the settled ones: `itemsOut + skipped + filtered`. The rate
 * is done items per second over `elapsedMs`. The line shows, in this order:
 * the label; `done/total`, a bar and the percentage (both rounded down, so
 * `100%` means finished) or `N done` without `total`; the rate;
 * `N failed`, `N skipped` (when different from failed) and `N cancelled`, each
 * only when above 0; then `eta` while running with a `total`, or the elapsed
 * time once `stats.done` or without a `total`. Durations read `7s`, `2m 5s`,
 * `1h 3m`; the elapsed time has tenths of a second below a minute (`3.2s`).
 *
 * @param stats A snapshot, from `flow.stats` or a `progress` event.
 * @param options Total, label, bar width and maximum length.
 * @returns One line of text, without a line break.
 * @throws {TypeError} When `options` is not an object, `label` not a string,
 * or `total`, `width` or `maxLength` not a number.
 * @throws {RangeError} When `total` is not an integer >= 0, `width` not a
 * positive integer, or `maxLength` not a positive integer or `Infinity`.
 *
 * @example Show a run's progress
 * ```ts
 * import { type FlowStats, formatProgress } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const none = { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 };
 * const stats: FlowStats = {
 *   elapsedMs: 4900,
 *   itemsIn: 130,
 *   itemsOut: 115,
 *   failed: 2,
 *   skipped: 2,
 *   filtered: 3,
 *   cancelled: 0,
 *   inFlight: 10,
 *   results: 115,
 *   running: 4,
 *   done: false,
 *   latency: none,
 *   stages: [],
 * };
 *
 * assert.equal(
 *   formatProgress(stats, { total: 300, label: "fetch" }),
 *   "fetch 120/300 ▕████░░░░░░▏ 40% · 24.5/s · 2 failed · eta 7s",
 * );
 * assert.equal(
 *   formatProgress(stats),
 *   "flow 120 done · 24.5/s · 2 failed · 4.9s",
 * );
 * ```
 */
export function formatProgress(
  stats: FlowStats,
  options?: ProgressOptions,
): string {
  assertOptions("options", options, "formatProgress()", [
    "total",
    "label",
    "width",
    "maxLength",
  ]);
  const {
    total,
    label = stats.stages.at(-1)?.name ?? "flow",
    width = 10,
    maxLength = Infinity,
  } = options ?? {};
  if (total !== undefined) assertInteger("total", total, 0);
  if (typeof label !== "string") {
    throw new TypeError(
      `'label' must be a string: current value is ${
        label === null || typeof label !== "object"
          ? String(label)
          : "an object"
      }`,
    );
  }
  assertInteger("width", width, 1);
  assertInteger("maxLength", maxLength, 1, true);

  const { elapsedMs, failed, skipped, cancelled } = stats;
  const done = stats.itemsOut + skipped + stats.filtered;
  const parts: string[] = [];

  let head = label === "" ? "" : `${label} `;
  if (total === undefined) {
    head += `${done} done`;
  } else {
    // Integer arithmetic first, so 29/100 shows 29 %, not 28 %.
    const settled = Math.min(done, total);
    const cells = total === 0 ? width : Math.floor(settled * width / total);
    const percent = total === 0 ? 100 : Math.floor(settled * 100 / total);
    head += `${done}/${total} ▕${"█".repeat(cells)}${
      "░".repeat(width - cells)
    }▏ ${percent}%`;
  }
  parts.push(head);

  const rate = elapsedMs > 0 ? done * 1000 / elapsedMs : 0;
  const tenths = Math.round(rate * 10) / 10;
  parts.push(`${tenths < 100 ? tenths.toFixed(1) : Math.round(rate)}/s`);
  if (failed > 0) parts.push(`${failed} failed`);
  if (skipped > 0 && skipped !== failed) parts.push(`${skipped} skipped`);
  if (cancelled > 0) parts.push(`${cancelled} cancelled`);

  if (total === undefined || stats.done) {
    parts.push(duration(elapsedMs, true));
  } else if (done > 0 && elapsedMs > 0 && done < total) {
    parts.push(`eta ${duration((total - done) * elapsedMs / done, false)}`);
  }

  const line = parts.join(" · ");
  const chars = Array.from(line);
  return chars.length <= maxLength
    ? line
    : chars.slice(0, maxLength - 1).join("") + "…";
}

/** `3.2s` (with `tenths`, below a minute), `7s`, `2m 5s`, `1h 3m`. */
function duration(ms: number, tenths: boolean): string {
  if (tenths) {
    const s = Math.round(ms / 100) / 10;
    if (s < 60) return `${s.toFixed(1)}s`;
  }
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m`;
}
