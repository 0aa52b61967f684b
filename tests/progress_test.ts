import assert from "node:assert/strict";
import type { FlowStats, LatencyStats, StageStats } from "../lib/stats.ts";
import { formatProgress } from "../lib/progress.ts";

const none: LatencyStats = {
  count: 0,
  avg: 0,
  min: 0,
  p50: 0,
  p95: 0,
  p99: 0,
  max: 0,
};

function stage(name: string): StageStats {
  return {
    name,
    kind: "map",
    concurrency: 1,
    queued: 0,
    inFlight: 0,
    busy: 0,
    backingOff: 0,
    completed: 0,
    failed: 0,
    skipped: 0,
    retried: 0,
    latency: none,
    queueWait: none,
    throughput: 0,
    workers: [],
  };
}

/** A FlowStats with every counter at 0, then `fields`. */
function stats(fields: Partial<FlowStats> = {}): FlowStats {
  return {
    elapsedMs: 0,
    itemsIn: 0,
    itemsOut: 0,
    failed: 0,
    skipped: 0,
    filtered: 0,
    cancelled: 0,
    inFlight: 0,
    results: 0,
    running: 0,
    done: false,
    latency: none,
    stages: [stage("parse"), stage("fetch")],
    ...fields,
  };
}

Deno.test("formatProgress() shows count, bar, percentage, rate and eta with a total", () => {
  assert.equal(
    formatProgress(stats({ itemsOut: 120, elapsedMs: 4900 }), { total: 300 }),
    "fetch 120/300 ▕████░░░░░░▏ 40% · 24.5/s · eta 7s",
  );
});

Deno.test("formatProgress() shows done count, rate and elapsed time without a total", () => {
  assert.equal(
    formatProgress(stats({ itemsOut: 120, failed: 2, elapsedMs: 3200 })),
    "fetch 120 done · 37.5/s · 2 failed · 3.2s",
  );
});

Deno.test("formatProgress() counts skipped and filtered items as done", () => {
  assert.equal(
    formatProgress(
      stats({ itemsOut: 50, skipped: 5, filtered: 45, elapsedMs: 10_000 }),
      { total: 200 },
    ),
    "fetch 100/200 ▕█████░░░░░▏ 50% · 10.0/s · 5 skipped · eta 10s",
  );
});

Deno.test("formatProgress() shows failed, skipped and cancelled only when above 0", () => {
  const base = { itemsOut: 10, elapsedMs: 1000 };
  assert.equal(formatProgress(stats(base)), "fetch 10 done · 10.0/s · 1.0s");
  assert.equal(
    formatProgress(stats({ ...base, failed: 3 })),
    "fetch 10 done · 10.0/s · 3 failed · 1.0s",
  );
  // Every failure was skipped: "3 skipped" would say the same again.
  assert.equal(
    formatProgress(stats({ ...base, failed: 3, skipped: 3 })),
    "fetch 13 done · 13.0/s · 3 failed · 1.0s",
  );
  assert.equal(
    formatProgress(stats({ ...base, failed: 3, skipped: 2 })),
    "fetch 12 done · 12.0/s · 3 failed · 2 skipped · 1.0s",
  );
  assert.equal(
    formatProgress(stats({ ...base, cancelled: 7 })),
    "fetch 10 done · 10.0/s · 7 cancelled · 1.0s",
  );
});

Deno.test("formatProgress() formats the eta in s, m s and h m", () => {
  const eta = (total: number) =>
    formatProgress(stats({ itemsOut: 1, elapsedMs: 1000 }), {
      total,
      label: "",
      width: 1,
    });
  assert.equal(eta(8), "1/8 ▕░▏ 12% · 1.0/s · eta 7s");
  assert.equal(eta(60), "1/60 ▕░▏ 1% · 1.0/s · eta 59s");
  assert.equal(eta(61), "1/61 ▕░▏ 1% · 1.0/s · eta 1m 0s");
  assert.equal(eta(126), "1/126 ▕░▏ 0% · 1.0/s · eta 2m 5s");
  assert.equal(eta(3601), "1/3601 ▕░▏ 0% · 1.0/s · eta 1h 0m");
  assert.equal(eta(3781), "1/3781 ▕░▏ 0% · 1.0/s · eta 1h 3m");
  assert.equal(eta(90_001), "1/90001 ▕░▏ 0% · 1.0/s · eta 25h 0m");
});

Deno.test("formatProgress() rounds the eta before splitting it", () => {
  // 59.6 s rounds to 60 s: "1m 0s", never "0m 60s" or "60s".
  assert.equal(
    formatProgress(stats({ itemsOut: 5, elapsedMs: 1000 }), {
      total: 303,
      label: "",
      width: 1,
    }),
    "5/303 ▕░▏ 1% · 5.0/s · eta 1m 0s",
  );
});

Deno.test("formatProgress() shows the elapsed time instead of the eta once done", () => {
  assert.equal(
    formatProgress(stats({ itemsOut: 300, elapsedMs: 12_240, done: true }), {
      total: 300,
    }),
    "fetch 300/300 ▕██████████▏ 100% · 24.5/s · 12.2s",
  );
  // A run that ended early (failed or aborted) shows no eta either.
  assert.equal(
    formatProgress(
      stats({ itemsOut: 40, cancelled: 5, elapsedMs: 125_000, done: true }),
      { total: 300 },
    ),
    "fetch 40/300 ▕█░░░░░░░░░▏ 13% · 0.3/s · 5 cancelled · 2m 5s",
  );
  assert.equal(
    formatProgress(stats({ itemsOut: 1, elapsedMs: 3_780_000, done: true })),
    "fetch 1 done · 0.0/s · 1h 3m",
  );
});

Deno.test("formatProgress() has no NaN or Infinity at 0 elapsed or 0 done", () => {
  assert.equal(
    formatProgress(stats(), { total: 300 }),
    "fetch 0/300 ▕░░░░░░░░░░▏ 0% · 0.0/s",
  );
  assert.equal(
    formatProgress(stats({ itemsOut: 4 }), { total: 300 }),
    "fetch 4/300 ▕░░░░░░░░░░▏ 1% · 0.0/s",
  );
  assert.equal(formatProgress(stats()), "fetch 0 done · 0.0/s · 0.0s");
  assert.equal(
    formatProgress(stats({ done: true }), { total: 0 }),
    "fetch 0/0 ▕██████████▏ 100% · 0.0/s · 0.0s",
  );
  assert.equal(
    formatProgress(stats({ elapsedMs: 500 }), { total: 0 }),
    "fetch 0/0 ▕██████████▏ 100% · 0.0/s",
  );
});

Deno.test("formatProgress() shows 100% only when every item is done", () => {
  const line = (itemsOut: number) =>
    formatProgress(stats({ itemsOut, elapsedMs: 10_000 }), { total: 1000 });
  assert.equal(line(999), "fetch 999/1000 ▕█████████░▏ 99% · 99.9/s · eta 0s");
  assert.equal(line(1000), "fetch 1000/1000 ▕██████████▏ 100% · 100/s");
  // More done than the caller expected: the bar stays full.
  assert.equal(line(1200), "fetch 1200/1000 ▕██████████▏ 100% · 120/s");
});

Deno.test("formatProgress() rounds the percentage and bar down exactly", () => {
  assert.equal(
    formatProgress(stats({ itemsOut: 29, elapsedMs: 1000 }), {
      total: 100,
      width: 20,
    }),
    "fetch 29/100 ▕█████░░░░░░░░░░░░░░░▏ 29% · 29.0/s · eta 2s",
  );
});

Deno.test("formatProgress() labels with the option, the last stage, or flow", () => {
  const s = stats({ itemsOut: 1, elapsedMs: 1000 });
  assert.equal(
    formatProgress(s, { label: "crawl" }),
    "crawl 1 done · 1.0/s · 1.0s",
  );
  assert.equal(formatProgress(s, { label: "" }), "1 done · 1.0/s · 1.0s");
  assert.equal(
    formatProgress({ ...s, stages: [] }),
    "flow 1 done · 1.0/s · 1.0s",
  );
});

Deno.test("formatProgress() cuts the line to maxLength", () => {
  const s = stats({ itemsOut: 120, failed: 2, elapsedMs: 4900 });
  const full = "fetch 120/300 ▕████░░░░░░▏ 40% · 24.5/s · 2 failed · eta 7s";
  assert.equal(formatProgress(s, { total: 300 }), full);
  assert.equal(formatProgress(s, { total: 300, maxLength: full.length }), full);
  assert.equal(
    formatProgress(s, { total: 300, maxLength: 20 }),
    "fetch 120/300 ▕████…",
  );
  assert.equal(formatProgress(s, { total: 300, maxLength: 1 }), "…");
  // Counted in characters, not UTF-16 code units.
  assert.equal(
    formatProgress(s, { label: "🚀🚀🚀", maxLength: 6 }),
    "🚀🚀🚀 1…",
  );
});

Deno.test("formatProgress() throws on bad options", () => {
  const s = stats();
  const bad = (options: unknown, error: ErrorConstructor, message: string) =>
    assert.throws(
      () => formatProgress(s, options as Parameters<typeof formatProgress>[1]),
      { name: error.name, message },
    );
  bad(
    "x",
    TypeError,
    `'options' must be an object: current value is "x"`,
  );
  bad(
    { total: -1 },
    RangeError,
    "'total' must be an integer >= 0: current value is -1",
  );
  bad(
    { total: 1.5 },
    RangeError,
    "'total' must be an integer >= 0: current value is 1.5",
  );
  bad(
    { total: Infinity },
    RangeError,
    "'total' must be an integer >= 0: current value is Infinity",
  );
  bad(
    { total: "10" },
    TypeError,
    `'total' must be an integer >= 0: current value is "10"`,
  );
  bad(
    { width: 0 },
    RangeError,
    "'width' must be a positive integer: current value is 0",
  );
  bad(
    { width: NaN },
    RangeError,
    "'width' must be a positive integer: current value is NaN",
  );
  bad(
    { maxLength: 0 },
    RangeError,
    "'maxLength' must be a positive integer or Infinity: current value is 0",
  );
  bad(
    { label: 5 },
    TypeError,
    "'label' must be a string: current value is 5",
  );
});
