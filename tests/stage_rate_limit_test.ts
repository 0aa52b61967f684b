// The stage-level `rateLimit` option of map() and filter(): at most `limit`
// call starts (retries included) in any sliding window of `intervalMs`.
// The timing cases run on FakeTime (a virtual clock), so start times are exact
// and start gaps are compared with no tolerance.
import assert from "node:assert/strict";
import { filter, map, pipeline } from "../mod.ts";
import {
  FakeTime,
  range,
  rejection,
  sleep,
  ticks,
  until,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";

/** Asserts that no `limit + 1` starts fall within one `intervalMs` window. */
function assertSlidingWindow(
  starts: readonly number[],
  limit: number,
  intervalMs: number,
): void {
  for (let i = 0; i + limit < starts.length; i++) {
    const gap = starts[i + limit] - starts[i];
    assert.ok(
      gap >= intervalMs,
      `starts ${i} and ${i + limit} are ${
        gap.toFixed(2)
      } ms apart (< ${intervalMs} ms): ${
        starts.map((t) => (t - starts[0]).toFixed(1)).join(", ")
      }`,
    );
  }
}

Deno.test("map() rateLimit { limit: 3, intervalMs: 100 } with concurrency 10: no 4 starts within 100 ms (sliding window), all 10 items complete in input order", async () => {
  using time = new FakeTime();
  const starts: number[] = [];
  const startedItems: number[] = [];
  const flow = pipeline(map(async (x: number) => {
    starts.push(performance.now());
    startedItems.push(x);
    await sleep((10 - x) * 3); // later items finish first
    return x * 2;
  }, { concurrency: 10, rateLimit: { limit: 3, intervalMs: 100 } }))
    .run(range(10));
  const t0 = performance.now();
  const collected = withTimeout(flow.collect(), 10_000, "the run");
  await time.runAllAsync();
  const out = await collected;
  const elapsed = performance.now() - t0;
  assert.deepEqual(out, range(10).map((x) => x * 2));
  assert.equal(starts.length, 10);
  assertSlidingWindow(starts, 3, 100);
  // 10 starts at 3 per window need 3 full windows: each start as soon as the
  // window lets it.
  assert.deepEqual(
    starts.map((t) => t - t0),
    [0, 0, 0, 100, 100, 100, 200, 200, 200, 300],
  );
  assert.ok(elapsed >= 300, `elapsed ${elapsed}`);
  // Starts are first come, first served: input order.
  assert.deepEqual(startedItems, range(10));
  const st = flow.stats().stages[0];
  assert.equal(st.completed, 10);
  assert.equal(st.busy, 0);
  assert.equal(st.inFlight, 0);
});

Deno.test("map() rateLimit is a sliding window: a burst right after a window edge is not allowed", async () => {
  // limit 2 / 60 ms, calls of ~40 ms, concurrency 4: a fixed window would let
  // 2 start at 0, 2 at 60 and so on; a sliding one keeps every pair of starts
  // two apart at least 60 ms apart, whatever the call durations.
  using time = new FakeTime();
  const starts: number[] = [];
  const flow = pipeline(map(async (x: number) => {
    starts.push(performance.now());
    await sleep(x % 2 === 0 ? 40 : 1);
    return x;
  }, { concurrency: 4, rateLimit: { limit: 2, intervalMs: 60 } }))
    .run(range(8), { order: "completion" });
  const collected = withTimeout(flow.collect(), 10_000, "the run");
  await time.runAllAsync();
  const out = await collected;
  assert.deepEqual(out.sort((a, b) => a - b), range(8));
  assert.equal(starts.length, 8);
  assertSlidingWindow(starts, 2, 60);
});

Deno.test("map() rateLimit counts retries as starts", async () => {
  using time = new FakeTime();
  const starts: number[] = [];
  const attempts: string[] = [];
  const flow = pipeline(map((x: number, ctx) => {
    starts.push(performance.now());
    attempts.push(`${x}/${ctx.attempt}`);
    if (ctx.attempt === 1) throw new Error(`first try of ${x}`);
    return x;
  }, {
    concurrency: 3,
    retry: { attempts: 2, delayMs: 1, jitter: false },
    rateLimit: { limit: 2, intervalMs: 80 },
  })).run(range(3));
  const collected = withTimeout(flow.collect(), 10_000, "the run");
  await time.runAllAsync();
  assert.deepEqual(await collected, range(3));
  assert.equal(starts.length, 6, attempts.join(" "));
  assert.deepEqual(attempts.slice().sort(), [
    "0/1",
    "0/2",
    "1/1",
    "1/2",
    "2/1",
    "2/2",
  ]);
  assertSlidingWindow(starts, 2, 80);
  assert.equal(flow.stats().stages[0].retried, 3);
});

Deno.test('map() rateLimit "started" events fire when the call starts, after the wait', async () => {
  using time = new FakeTime();
  const calls: number[] = [];
  const flow = pipeline(map((x: number) => {
    calls.push(x);
    return x;
  }, { concurrency: 5, rateLimit: { limit: 1, intervalMs: 40 } }))
    .run(range(3));
  const events: number[] = [];
  flow.addEventListener("started", (e) => {
    // The event comes right before its call: never ahead of the limiter.
    assert.equal(calls.length, events.length);
    events.push(e.detail.index);
  });
  const collected = withTimeout(flow.collect(), 5000, "the run");
  await time.runAllAsync();
  assert.deepEqual(await collected, range(3));
  assert.deepEqual(events, range(3));
  assert.deepEqual(calls, range(3));
});

Deno.test("filter() rateLimit limits predicate starts too", async () => {
  using time = new FakeTime();
  const starts: number[] = [];
  const flow = pipeline(filter((x: number) => {
    starts.push(performance.now());
    return x % 2 === 0;
  }, { concurrency: 4, rateLimit: { limit: 2, intervalMs: 50 } }))
    .run(range(6));
  const collected = withTimeout(flow.collect(), 5000, "the run");
  await time.runAllAsync();
  assert.deepEqual(await collected, [0, 2, 4]);
  assert.equal(starts.length, 6);
  assertSlidingWindow(starts, 2, 50);
});

// ---- validation ------------------------------------------------------------------

Deno.test("map() rateLimit rejects a bad limit, intervalMs or object, naming the option", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [{ limit: 0, intervalMs: 100 }, RangeError, /'rateLimit\.limit'/],
    [{ limit: -1, intervalMs: 100 }, RangeError, /'rateLimit\.limit'/],
    [{ limit: 1.5, intervalMs: 100 }, RangeError, /'rateLimit\.limit'/],
    [{ limit: NaN, intervalMs: 100 }, RangeError, /'rateLimit\.limit'/],
    [{ limit: "3", intervalMs: 100 }, TypeError, /'rateLimit\.limit'/],
    [{ intervalMs: 100 }, TypeError, /'rateLimit\.limit'/],
    [{ limit: 3, intervalMs: -1 }, RangeError, /'rateLimit\.intervalMs'/],
    [{ limit: 3, intervalMs: 0 }, RangeError, /'rateLimit\.intervalMs'/],
    [{ limit: 3, intervalMs: Infinity }, RangeError, /'rateLimit\.intervalMs'/],
    [{ limit: 3, intervalMs: "1s" }, TypeError, /'rateLimit\.intervalMs'/],
    [{ limit: 3 }, TypeError, /'rateLimit\.intervalMs'/],
    ["x", TypeError, /'rateLimit'/],
    [5, TypeError, /'rateLimit'/],
    [null, TypeError, /'rateLimit'/],
  ];
  for (const [rateLimit, kind, name] of cases) {
    for (
      const make of [
        () => map((x: number) => x, { rateLimit: rateLimit as never }),
        () => filter((x: number) => x > 0, { rateLimit: rateLimit as never }),
      ]
    ) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof kind, `${JSON.stringify(rateLimit)}: ${e}`);
        assert.match((e as Error).message, name);
        return true;
      });
    }
  }
  // Valid values are accepted.
  map((x: number) => x, { rateLimit: { limit: 1, intervalMs: 0.5 } });
  map((x: number) => x, { rateLimit: undefined });
});

Deno.test("map() rateLimit validation names the received value", () => {
  assert.throws(
    () => map((x: number) => x, { rateLimit: { limit: 0, intervalMs: 100 } }),
    /current value is 0/,
  );
  assert.throws(
    () => map((x: number) => x, { rateLimit: { limit: 1, intervalMs: -1 } }),
    /current value is -1/,
  );
  assert.throws(
    () => map((x: number) => x, { rateLimit: "x" as never }),
    /current value is "x"/,
  );
});

// ---- abort and stats ---------------------------------------------------------------

Deno.test("map() rateLimit: an abort while calls wait on the rate limit settles promptly, clears the limiter's timer, and the waiting calls never start", async () => {
  const called: number[] = [];
  const flow = pipeline(map(async (x: number, ctx) => {
    called.push(x);
    await whenAborted(ctx.signal);
    return x;
  }, { concurrency: 5, rateLimit: { limit: 1, intervalMs: 60_000 } }))
    .run(range(5));
  const out = rejection(flow.collect());
  await until(() => flow.stats().stages[0].busy === 5, "5 busy slots");
  assert.deepEqual(called, [0]);
  const t0 = performance.now();
  await withTimeout(flow.abort(new Error("stop")), 1000, "the abort");
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(((await out) as Error).message, "stop");
  await ticks();
  await sleep(20);
  assert.deepEqual(called, [0], "waiting calls never started");
  const s = flow.stats();
  assert.equal(s.done, true);
  assert.equal(s.stages[0].busy, 0);
  assert.equal(s.stages[0].inFlight, 0);
  assert.equal(s.stages[0].completed, 0);
  assert.ok(s.cancelled >= 5);
  // The leak sanitizers fail this test if the limiter's 60 s timer is left.
});

Deno.test("map() rateLimit: an abort by the run's signal while calls wait settles promptly too", async () => {
  const controller = new AbortController();
  let calls = 0;
  const flow = pipeline(map((x: number) => {
    calls++;
    return x;
  }, { concurrency: 3, rateLimit: { limit: 2, intervalMs: 60_000 } }))
    .run(range(10), { signal: controller.signal });
  const out = rejection(flow.collect());
  await until(() => calls === 2 && flow.stats().stages[0].busy >= 1, "waits");
  controller.abort(new Error("signal"));
  assert.equal(
    ((await withTimeout(out, 1000, "the abort")) as Error).message,
    "signal",
  );
  await sleep(20);
  assert.equal(calls, 2);
});

Deno.test("map() rateLimit: busy counts a slot waiting for the limiter while inFlight and running do not", async () => {
  const flow = pipeline(map(async (x: number, ctx) => {
    await whenAborted(ctx.signal);
    return x;
  }, { concurrency: 3, rateLimit: { limit: 1, intervalMs: 60_000 } }))
    .run(range(3));
  const out = rejection(flow.collect());
  try {
    await until(() => flow.stats().stages[0].busy === 3, "3 busy slots");
    const s = flow.stats();
    const st = s.stages[0];
    assert.equal(st.busy, 3);
    assert.equal(st.inFlight, 1);
    assert.equal(s.running, 1);
    assert.equal(st.queued, 0);
    assert.equal(st.workers.length, 3);
    assert.ok(st.workers.every((w) => w.state === "busy"));
    assert.deepEqual(st.workers.map((w) => w.index).sort(), [0, 1, 2]);
  } finally {
    await withTimeout(flow.abort(new Error("stop")), 1000, "the abort");
    await out;
  }
});

Deno.test("map() rateLimit: a worker waiting for the limiter reports no bogus since (undefined or a time, never NaN)", async () => {
  const flow = pipeline(map(async (x: number, ctx) => {
    await whenAborted(ctx.signal);
    return x;
  }, { concurrency: 3, rateLimit: { limit: 1, intervalMs: 60_000 } }))
    .run(range(3));
  const out = rejection(flow.collect());
  try {
    await until(() => flow.stats().stages[0].busy === 3, "3 busy slots");
    for (const w of flow.stats().stages[0].workers) {
      assert.ok(
        w.since === undefined || Number.isFinite(w.since),
        `worker ${w.workerId} on item ${w.index}: since ${w.since}`,
      );
    }
  } finally {
    await withTimeout(flow.abort(new Error("stop")), 1000, "the abort");
    await out;
  }
});
