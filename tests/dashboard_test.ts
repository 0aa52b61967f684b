import assert from "node:assert/strict";
import { batch, map, pipeline, Pool } from "../mod.ts";
import type { FlowStats } from "../mod.ts";
import { dashboard } from "../lib/dashboard.ts";
import { FakeTime, Gates, sleep } from "./_helpers.ts";

/** ANSI escapes made visible: `"\x1b[6A"` reads `"<ESC>[6A"`. */
const visible = (text: string) => text.replaceAll("\x1b[", "<ESC>[");

/**
 * A 3-stage pipeline on virtual time: `fetch` (2 workers, 30 ms a call) →
 * `group` (batches of 3, at most 50 ms) → `store` (1 worker, 20 ms a batch;
 * the batch starting with `failOn` fails and is skipped).
 */
function threeStages(failOn = -1) {
  return pipeline(
    map(async (x: number) => {
      await sleep(30);
      return x;
    }, { name: "fetch", concurrency: 2 }),
    batch({ maxSize: 3, maxWaitMs: 50, name: "group" }),
    map(async (xs: number[]) => {
      await sleep(20);
      if (xs[0] === failOn) throw new Error(`disk full at ${xs[0]}`);
      return xs;
    }, { name: "store", onError: "skip" }),
  );
}

/** Runs `flow` to its end on the fake clock, `step` ms at a time. */
async function runOut(
  time: FakeTime,
  done: Promise<unknown>,
  step: number,
): Promise<void> {
  let settled = false;
  done.then(() => settled = true, () => settled = true);
  for (let i = 0; i < 100 && !settled; i++) await time.tickAsync(step);
  await done;
}

/**
 * What `write` receives for a frame of `lines`: as is the first time; a
 * redraw goes `up` lines and erases each line before writing it.
 */
function drawn(lines: string[], up = 0): string {
  const erase = up > 0 ? "<ESC>[2K" : "";
  return (up > 0 ? `<ESC>[${up}A` : "") +
    lines.map((line) => `${erase}${line}\n`).join("");
}

const HEADER =
  "stage      workers         queued   done    p50    p95     rate";

const none = { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 };

Deno.test("dashboard() compact on a TTY draws a frame at once, then redraws it in place (cursor up over the last one) every intervalMs", async () => {
  using time = new FakeTime();
  const flow = threeStages().run([0, 1, 2, 3, 4, 5]);
  const out: string[] = [];
  const dash = dashboard(flow, {
    write: (text) => out.push(visible(text)),
    isTTY: true,
    total: 6,
    intervalMs: 50,
  });
  assert.deepEqual(out, ["store 0/6 ▕░░░░░░░░░░▏ 0% · 0.0/s\n"]);
  await runOut(time, flow.collect(), 50);
  assert.deepEqual(out, [
    "store 0/6 ▕░░░░░░░░░░▏ 0% · 0.0/s\n",
    "<ESC>[1A<ESC>[2Kstore 3/6 ▕█████░░░░░▏ 50% · 30.0/s · eta 0s\n",
    "<ESC>[1A<ESC>[2Kstore 6/6 ▕██████████▏ 100% · 54.5/s · 0.1s\n",
  ]);
  assert.equal(dash.stopped, true);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() detailed adds one row per stage: workers busy/idle, queued (a batch's forming items), done, p50/p95, rate", async () => {
  using time = new FakeTime();
  const flow = threeStages().run([0, 1, 2, 3, 4, 5]);
  const out: string[] = [];
  dashboard(flow, {
    write: (text) => out.push(visible(text)),
    level: "detailed",
    isTTY: true,
    total: 6,
    intervalMs: 50,
  });
  await runOut(time, flow.collect(), 50);
  assert.deepEqual(out, [
    drawn([
      "store 0/6 ▕░░░░░░░░░░▏ 0% · 0.0/s",
      HEADER,
      "fetch      ▯▯ 0/2               0      0      -      -    0.0/s",
      "group      forming batch        0      0      -      -    0.0/s",
      "store      ▯ 0/1                0      0      -      -    0.0/s",
    ]),
    // 50 ms: both fetch workers busy, 2 items in the forming batch
    drawn([
      "store 0/6 ▕░░░░░░░░░░▏ 0% · 0.0/s",
      HEADER,
      "fetch      ▮▮ 2/2               0      2   30ms   30ms   40.0/s",
      "group      forming batch        2      0      -      -    0.0/s",
      "store      ▯ 0/1                0      0      -      -    0.0/s",
    ], 5),
    // 100 ms: the first batch stored, the second being stored
    drawn([
      "store 3/6 ▕█████░░░░░▏ 50% · 30.0/s · eta 0s",
      HEADER,
      "fetch      ▯▯ 0/2               0      6   30ms   30ms   60.0/s",
      "group      forming batch        0      2      -      -   20.0/s",
      "store      ▮ 1/1                0      1   20ms   20ms   10.0/s",
    ], 5),
    // 110 ms: settled; the figures of that moment
    drawn([
      "store 6/6 ▕██████████▏ 100% · 54.5/s · 0.1s",
      HEADER,
      "fetch      ▯▯ 0/2               0      6   30ms   30ms   54.5/s",
      "group      forming batch        0      2      -      -   18.2/s",
      "store      ▯ 0/1                0      2   20ms   20ms   18.2/s",
    ], 5),
  ]);
});

Deno.test("dashboard() full lists the failures: their count and the last maxFailures, newest first", async () => {
  using time = new FakeTime();
  const p = pipeline(
    map(async (x: number) => {
      await sleep(10);
      if (x % 2 === 1) throw new Error(`bad item ${x}`);
      return x;
    }, { name: "check", concurrency: 2, onError: "skip" }),
  );
  const flow = p.run([0, 1, 2, 3, 4, 5, 6, 7]);
  const out: string[] = [];
  const dash = dashboard(flow, {
    write: (text) => out.push(visible(text)),
    level: "full",
    isTTY: true,
    maxFailures: 2,
    intervalMs: 25,
  });
  const done = flow.collect();
  await time.tickAsync(25);
  assert.equal(
    dash.frame(),
    [
      "check 4 done · 160/s · 2 failed · 0.0s",
      HEADER,
      "check      ▮▮ 2/2               1      2   10ms   10ms   80.0/s  2 failed",
      "failures: 2",
      "  check item 3: Error: bad item 3",
      "  check item 1: Error: bad item 1",
    ].join("\n"),
  );
  await runOut(time, done, 25);
  assert.equal(
    out.at(-1),
    drawn([
      "check 8 done · 200/s · 4 failed · 0.0s",
      HEADER,
      "check      ▯▯ 0/2               0      4   10ms   10ms    100/s  4 failed",
      "failures: 4 (last 2)",
      "  check item 7: Error: bad item 7",
      "  check item 5: Error: bad item 5",
    ], 6),
  );
});

Deno.test("dashboard() full also lists failures from before it started (flow.failures)", async () => {
  using time = new FakeTime();
  const flow = threeStages(3).run([0, 1, 2, 3, 4, 5]);
  await runOut(time, flow.collect(), 50);
  const out: string[] = [];
  const dash = dashboard(flow, {
    write: (text) => out.push(visible(text)),
    level: "full",
    isTTY: true,
  });
  assert.equal(dash.stopped, true);
  assert.deepEqual(out, [
    drawn([
      "store 6 done · 40.0/s · 3 failed · 0.2s",
      HEADER,
      "fetch      ▯▯ 0/2               0      6   30ms   30ms   40.0/s",
      "group      forming batch        0      2      -      -   13.3/s",
      "store      ▯ 0/1                0      1   20ms   20ms    6.7/s  1 failed",
      "failures: 1",
      "  store item 3: Error: disk full at 3",
    ]),
  ]);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() off a TTY writes nothing while the flow runs and one summary line when it settles", async () => {
  using time = new FakeTime();
  const flow = threeStages(3).run([0, 1, 2, 3, 4, 5]);
  const out: string[] = [];
  dashboard(flow, {
    write: (text) => out.push(text),
    level: "full",
    total: 6,
  });
  const done = flow.collect();
  await time.tickAsync(100);
  assert.deepEqual(out, []);
  await runOut(time, done, 50);
  assert.deepEqual(out, [
    "store 6/6 ▕██████████▏ 100% · 54.5/s · 3 failed · 0.1s\n",
  ]);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() of a Pool shows its workers, queue and latency, and stops once the pool is closed and idle", async () => {
  using time = new FakeTime();
  const pool = new Pool({ concurrency: 3 });
  const gates = new Gates<number>();
  const out: string[] = [];
  const dash = dashboard(pool, {
    write: (text) => out.push(visible(text)),
    level: "full",
    isTTY: true,
    total: 5,
    intervalMs: 100,
  });
  const tasks = [0, 1, 2, 3, 4].map((i) =>
    pool.submit(async () => {
      await gates.wait(i);
      if (i === 1) throw new Error("quota exceeded");
      return i;
    }).catch((e) => e)
  );
  await time.tickAsync(40);
  gates.open(0);
  gates.open(1);
  await time.tickAsync(60);
  // 100 ms: one task done, one failed, three running, none queued
  assert.equal(
    dash.frame(),
    [
      "pool 2/5 ▕████░░░░░░▏ 40% · 20.0/s · 1 failed · eta 0s",
      HEADER,
      "pool       ▮▮▮ 3/3              0      1   40ms   40ms   10.0/s  1 failed",
      "failures: 1",
      "  pool task 1: Error: quota exceeded",
    ].join("\n"),
  );
  gates.open(2);
  await time.tickAsync(50);
  const closed = pool.close(); // drains: two tasks still run
  await time.tickAsync(30);
  assert.equal(dash.stopped, false);
  gates.open(3);
  gates.open(4);
  await closed;
  await Promise.all(tasks);
  assert.equal(dash.stopped, true);
  assert.deepEqual(out, [
    drawn([
      "pool 0/5 ▕░░░░░░░░░░▏ 0% · 0.0/s",
      HEADER,
      "pool       ▯▯▯ 0/3              0      0      -      -    0.0/s",
      "failures: none",
    ]),
    drawn([
      "pool 2/5 ▕████░░░░░░▏ 40% · 20.0/s · 1 failed · eta 0s",
      HEADER,
      "pool       ▮▮▮ 3/3              0      1   40ms   40ms   10.0/s  1 failed",
      "failures: 1",
      "  pool task 1: Error: quota exceeded",
    ], 4),
    // 180 ms: closed and idle, seen at the `idle` event of the last task
    drawn([
      "pool 5/5 ▕██████████▏ 100% · 27.8/s · 1 failed · 0.2s",
      HEADER,
      "pool       ▯▯▯ 0/3              0      4  100ms  140ms   22.2/s  1 failed",
      "failures: 1",
      "  pool task 1: Error: quota exceeded",
    ], 5),
  ]);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() of a Pool off a TTY writes its summary at the next interval after close() of an idle pool, and stop() writes it at once", async () => {
  using time = new FakeTime();
  const pool = new Pool({ concurrency: 2 });
  const out: string[] = [];
  const dash = dashboard(pool, { write: (t) => out.push(t), intervalMs: 100 });
  await pool.submit(() => 1);
  await time.tickAsync(100);
  assert.deepEqual(out, []);
  await pool.close(); // closed while idle: no `idle` event follows
  assert.deepEqual(out, []);
  await time.tickAsync(100);
  assert.deepEqual(out, ["pool 1 done · 5.0/s · 0.2s\n"]);
  assert.equal(dash.stopped, true);

  const other = new Pool({ concurrency: 2 });
  const lines: string[] = [];
  const d2 = dashboard(other, { write: (t) => lines.push(t), label: "jobs" });
  await other.submit(() => 1);
  d2.stop(); // the pool is open: stop() ends it
  d2.stop();
  assert.deepEqual(lines, ["jobs 1 done · 0.0/s · 0.0s\n"]);
  assert.equal(time.pending, 0);
  await other.close();
});

/** A stage's figures, for a stats source. */
function stage(name: string): FlowStats["stages"][number] {
  return {
    name,
    kind: "map",
    concurrency: 20,
    queued: 7,
    inFlight: 5,
    busy: 5,
    backingOff: 2,
    completed: 4,
    failed: 1,
    skipped: 0,
    retried: 3,
    latency: { ...none, count: 4, p50: 1234.5, p95: 98765 },
    queueWait: none,
    throughput: 2,
    workers: [],
    adaptive: { min: 4, max: 32, limit: 20, history: [] },
  };
}

function flowStats(stages: FlowStats["stages"]): FlowStats {
  return {
    elapsedMs: 2000,
    itemsIn: 10,
    itemsOut: 4,
    failed: 0,
    skipped: 0,
    filtered: 0,
    cancelled: 0,
    inFlight: 6,
    results: 4,
    running: 5,
    done: false,
    latency: none,
    stages,
  };
}

Deno.test("dashboard() cuts every line to width and turns control characters into spaces", () => {
  const stats = flowStats([stage("load\tdb"), stage("a-very-long-stage-name")]);
  const options = {
    write: () => {},
    level: "detailed",
    label: "run\x1b[2Jx",
    total: 10,
  } as const;
  using narrow = dashboard({ stats: () => stats }, { ...options, width: 40 });
  assert.equal(
    narrow.frame(),
    [
      "run [2Jx 4/10 ▕████░░░░░░▏ 40% · 2.0/s …",
      "stage      workers         queued   don…",
      "load db    ▮▮▮▯▯▯▯▯▯▯ 5/20      7      …",
      "a-very-lo… ▮▮▮▯▯▯▯▯▯▯ 5/20      7      …",
    ].join("\n"),
  );
  // 20 slots shown as 10 glyphs; retrying, failed and the adaptive limit
  using wide = dashboard({ stats: () => stats }, { ...options, width: 120 });
  assert.equal(
    wide.frame().split("\n")[2],
    "load db    ▮▮▮▯▯▯▯▯▯▯ 5/20      7      4   1.2s  98.8s    2.0/s  2 retrying · 1 failed · limit 20 (4-32)",
  );
});

Deno.test("dashboard() of a stats source stops when stats().done; a shorter frame erases the lines below", async () => {
  using time = new FakeTime();
  let stats = flowStats([stage("a"), stage("b")]);
  const out: string[] = [];
  const dash = dashboard({ stats: () => stats }, {
    write: (t) => out.push(visible(t)),
    level: "detailed",
    isTTY: true,
    label: "naive",
    width: 60,
    extra: () => " · 3 held",
  });
  stats = { ...flowStats([stage("a")]), elapsedMs: 2200, itemsOut: 10 };
  await time.tickAsync(200);
  assert.equal(dash.stopped, false);
  stats = { ...stats, done: true };
  await time.tickAsync(200);
  assert.equal(dash.stopped, true);
  assert.deepEqual(out, [
    drawn([
      "naive 4 done · 2.0/s · 2.0s · 3 held",
      "stage      workers         queued   done    p50    p95     …",
      "a          ▮▮▮▯▯▯▯▯▯▯ 5/20      7      4   1.2s  98.8s    2…",
      "b          ▮▮▮▯▯▯▯▯▯▯ 5/20      7      4   1.2s  98.8s    2…",
    ]),
    // one line less: erased below; the final frame is the same, not rewritten
    drawn([
      "naive 10 done · 4.5/s · 2.2s · 3 held",
      "stage      workers         queued   done    p50    p95     …",
      "a          ▮▮▮▯▯▯▯▯▯▯ 5/20      7      4   1.2s  98.8s    2…",
    ], 4) + "<ESC>[J",
  ]);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() stop() clears its timer and listeners, writes the last frame once, and using disposes it", async () => {
  using time = new FakeTime();
  const flow = threeStages().run([0, 1, 2, 3, 4, 5]);
  const out: string[] = [];
  const done = flow.collect();
  {
    using dash = dashboard(flow, {
      write: (text) => out.push(visible(text)),
      isTTY: true,
      total: 6,
      intervalMs: 50,
    });
    await time.tickAsync(90);
    dash.stop();
    assert.equal(dash.stopped, true);
    dash.stop();
  }
  const writes = out.length;
  await runOut(time, done, 50);
  assert.equal(out.length, writes); // nothing after stop()
  assert.deepEqual(out, [
    "store 0/6 ▕░░░░░░░░░░▏ 0% · 0.0/s\n",
    // 50 ms: the same frame, not rewritten; 90 ms: stop() draws the last one
    "<ESC>[1A<ESC>[2Kstore 3/6 ▕█████░░░░░▏ 50% · 33.3/s · eta 0s\n",
  ]);
  assert.equal(time.pending, 0);
});

Deno.test("dashboard() shows an adaptive stage's current limit", async () => {
  using time = new FakeTime();
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(10);
      return x;
    }, { name: "call", concurrency: { adaptive: { min: 2, max: 8 } } }),
  ).run([1, 2, 3, 4]);
  const dash = dashboard(flow, { write: () => {}, level: "detailed" });
  await time.tickAsync(5);
  assert.equal(
    dash.frame().split("\n")[2],
    "call       ▮▮ 2/2               1      0      -      -    0.0/s  limit 2 (2-8)",
  );
  await runOut(time, flow.collect(), 10);
});

Deno.test("dashboard() rejects a bad target or option with a TypeError or RangeError naming it and the value", () => {
  const flow = { stats: () => ({}) as FlowStats };
  const write = () => {};
  const bad = (options: unknown) => () =>
    // deno-lint-ignore no-explicit-any
    dashboard(flow, options as any);
  assert.throws(
    () => dashboard(null as never, { write }),
    new TypeError(
      "'target' must be a Flow, a Pool or an object with stats(): current value is null",
    ),
  );
  assert.throws(
    bad(undefined),
    new TypeError("'options' must be an object: current value is undefined"),
  );
  assert.throws(
    bad({}),
    new TypeError("'write' must be a function: current value is undefined"),
  );
  assert.throws(
    bad({ write, level: "verbose" }),
    new TypeError(
      '\'level\' must be "compact" or "detailed" or "full": current value is "verbose"',
    ),
  );
  assert.throws(
    bad({ write, isTTY: 1 }),
    new TypeError("'isTTY' must be a boolean: current value is 1"),
  );
  assert.throws(bad({ write, intervalMs: 0 }), RangeError);
  assert.throws(
    bad({ write, intervalMs: 0 }),
    /'intervalMs'.*current value is 0/,
  );
  assert.throws(
    bad({ write, total: -1 }),
    new RangeError("'total' must be an integer >= 0: current value is -1"),
  );
  assert.throws(
    bad({ write, width: 10 }),
    new RangeError("'width' must be an integer >= 20: current value is 10"),
  );
  assert.throws(
    bad({ write, width: "80" }),
    new TypeError("'width' must be an integer >= 20: current value is \"80\""),
  );
  assert.throws(
    bad({ write, maxFailures: 1.5 }),
    new RangeError(
      "'maxFailures' must be an integer >= 0: current value is 1.5",
    ),
  );
  assert.throws(
    bad({ write, label: 3 }),
    new TypeError("'label' must be a string: current value is 3"),
  );
  assert.throws(
    bad({ write, extra: "x" }),
    new TypeError("'extra' must be a function: current value is \"x\""),
  );
  assert.throws(
    bad({ write, signal: {} }),
    new TypeError(
      "'signal' must be an AbortSignal: current value is an object",
    ),
  );
  assert.throws(
    bad({ write, intervalMS: 100 }),
    new TypeError(
      "'intervalMS' is not an option of dashboard(): did you mean 'intervalMs'?",
    ),
  );
});

Deno.test("dashboard() stops when its signal aborts", () => {
  const controller = new AbortController();
  const out: string[] = [];
  const pool = new Pool();
  const dash = dashboard(pool, {
    write: (t) => out.push(t),
    signal: controller.signal,
  });
  controller.abort();
  assert.equal(dash.stopped, true);
  assert.deepEqual(out, ["pool 0 done · 0.0/s · 0.0s\n"]);
});
