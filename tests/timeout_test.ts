// map() timeoutMs: the attempt's ctx.signal aborts with a TimeoutError, the
// attempt fails with it (even when the call returns late), retry and onError
// then apply, timers are cleared, a run abort reaches a timed attempt, and
// the option is validated.
import assert from "node:assert/strict";
import {
  map,
  pipeline,
  PipelineError,
  type TaskContext,
  TimeoutError,
} from "../mod.ts";
import {
  FakeTime,
  rangeInclusive,
  rejection,
  sleep,
  until,
  untilAborted,
  withTimeout,
} from "./_helpers.ts";

Deno.test("map() timeoutMs aborts the attempt's ctx.signal with a TimeoutError and fails the attempt with it", async () => {
  let signal: AbortSignal | undefined;
  const p = pipeline(map((_: number, ctx) => {
    signal = ctx.signal;
    return untilAborted(ctx.signal);
  }, { name: "slow", timeoutMs: 20 }));
  const flow = p.run([4]);
  const error = await withTimeout(
    rejection(flow.collect()),
    3000,
    "a 20 ms timeout",
  );
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.stage, "slow");
  assert.equal(error.item, 4);
  assert.equal(error.index, 0);
  assert(error.cause instanceof TimeoutError, String(error.cause));
  assert.equal(error.cause.name, "TimeoutError");
  assert(signal!.aborted);
  assert(signal!.reason instanceof TimeoutError);
  assert.equal(error.cause, signal!.reason);
  assert.match(error.message, /slow/);
  assert.equal(flow.stats().stages[0].failed, 1);
});

Deno.test("map() timeoutMs is a timeout even when the call swallows the abort and resolves a value", async () => {
  const p = pipeline(map(
    (_: number, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve("late"), {
          once: true,
        });
      }),
    { timeoutMs: 20 },
  ));
  const error = await withTimeout(
    rejection(p.run([1]).collect()),
    3000,
    "a 20 ms timeout",
  );
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof TimeoutError, String(error.cause));
});

Deno.test("map() timeoutMs is a timeout when the call ignores the signal and returns after its deadline", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  let returned = false;
  let abortedAt = -1;
  const p = pipeline(map(async (x: number, ctx) => {
    ctx.signal.addEventListener("abort", () => abortedAt = time.now - t0);
    await sleep(120);
    returned = true;
    return x;
  }, { timeoutMs: 20 }));
  const flow = p.run([1]);
  let settledAt = -1;
  const out = withTimeout(
    rejection(flow.collect()),
    3000,
    "a 20 ms timeout",
  ).finally(() => settledAt = time.now - t0);
  await time.runAllAsync();
  const error = await out;
  // The signal aborts at the deadline; the run waits for the call's return.
  assert.equal(abortedAt, 20);
  assert.equal(settledAt, 120);
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof TimeoutError, String(error.cause));
  assert.equal(returned, true, "the run settles only after the call returned");
  assert.equal(flow.stats().itemsOut, 0);
});

Deno.test("map() timeoutMs then retry applies: a timed-out first attempt is retried and a fast second one delivers", async () => {
  const signals: AbortSignal[] = [];
  const abortedAtStart: boolean[] = [];
  const p = pipeline(map((x: number, ctx) => {
    signals.push(ctx.signal);
    abortedAtStart.push(ctx.signal.aborted);
    if (ctx.attempt === 1) return untilAborted(ctx.signal);
    return x * 2;
  }, { timeoutMs: 20, retry: { attempts: 2, random: () => 0 } }));
  const flow = p.run([21]);
  const retrying: unknown[] = [];
  flow.addEventListener("retrying", (e) => retrying.push(e.detail.error));
  assert.deepEqual(await withTimeout(flow.collect(), 3000, "retry"), [42]);
  assert.equal(signals.length, 2);
  assert.notEqual(signals[0], signals[1], "each attempt has its own signal");
  assert.deepEqual(abortedAtStart, [false, false]);
  assert(signals[0].reason instanceof TimeoutError);
  assert.equal(signals[1].aborted, false);
  assert.equal(retrying.length, 1);
  assert(retrying[0] instanceof TimeoutError);
  assert.equal(flow.stats().stages[0].retried, 1);
});

Deno.test("map() timeoutMs every attempt timing out fails the run with a TimeoutError after all attempts", async () => {
  const attempts: number[] = [];
  const p = pipeline(map((_: number, ctx) => {
    attempts.push(ctx.attempt);
    return untilAborted(ctx.signal);
  }, { timeoutMs: 10, retry: { attempts: 3, random: () => 0 } }));
  const error = await withTimeout(
    rejection(p.run([1]).collect()),
    3000,
    "three 10 ms timeouts",
  );
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof TimeoutError);
  assert.deepEqual(attempts, [1, 2, 3]);
});

Deno.test("map() timeoutMs counts per attempt: the deadline does not run through a backoff", async () => {
  // Attempt 1 fails at once, the backoff (150 ms) is longer than timeoutMs
  // (50 ms), attempt 2 is fast: a deadline per item would fail it.
  using time = new FakeTime();
  const t0 = time.now;
  const startedAt: number[] = [];
  const p = pipeline(map((x: number, ctx) => {
    startedAt.push(time.now - t0);
    if (ctx.attempt === 1) throw new Error("flaky");
    return x;
  }, {
    timeoutMs: 50,
    retry: { attempts: 2, delayMs: 150, jitter: false },
  }));
  const out = p.run([1, 2]).collect();
  await time.runAllAsync();
  assert.deepEqual(await out, [1, 2]);
  assert.deepEqual(startedAt, [0, 0, 150, 150]);
});

Deno.test("map() timeoutMs then onError applies: skip records the item with a TimeoutError", async () => {
  using time = new FakeTime();
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 1) return await untilAborted(ctx.signal);
    await sleep(1);
    return x;
  }, { name: "fetch", concurrency: 2, timeoutMs: 500, onError: "skip" }));
  const flow = p.run([0, 1, 2, 3]);
  const skipped: unknown[] = [];
  flow.addEventListener("skipped", (e) => skipped.push(e.detail.error));
  const out = withTimeout(flow.collect(), 3000, "skip");
  await time.runAllAsync();
  assert.deepEqual(await out, [0, 2, 3]);
  assert.equal(flow.failures.length, 1);
  const record = flow.failures[0];
  assert.equal(record.item, 1);
  assert.equal(record.index, 1);
  assert.equal(record.itemId, 1);
  assert.equal(record.stage, "fetch");
  assert.equal(record.attempts, 1);
  assert(record.error instanceof TimeoutError, String(record.error));
  assert.equal((record.error as Error).name, "TimeoutError");
  assert.deepEqual(skipped, [record.error]);
  assert.equal(flow.stats().skipped, 1);
});

Deno.test("map() timeoutMs then onError applies: a handler sees the TimeoutError and can substitute a value", async () => {
  const seen: unknown[] = [];
  const p = pipeline(map(
    (x: number, ctx) => x === 0 ? untilAborted(ctx.signal) : x,
    {
      timeoutMs: 20,
      retry: { attempts: 2, random: () => 0 },
      onError: (error, item, ctx) => {
        seen.push(error, item, ctx.attempt);
        return { value: -1 };
      },
    },
  ));
  const flow = p.run([0, 1]);
  assert.deepEqual(await withTimeout(flow.collect(), 3000, "handler"), [-1, 1]);
  assert(seen[0] instanceof TimeoutError);
  assert.deepEqual(seen.slice(1), [0, 2]);
});

Deno.test("map() timeoutMs clears the timer of every timely call", async () => {
  // A pending 60 s timer would fail this test under the leak sanitizer.
  const sync = pipeline(map((x: number) => x + 1, {
    timeoutMs: 60_000,
    concurrency: 4,
  }));
  assert.deepEqual(
    await sync.run(rangeInclusive(0, 49)).collect(),
    rangeInclusive(1, 50),
  );
  const async = pipeline(map(async (x: number) => {
    await sleep(x % 3);
    return x;
  }, { timeoutMs: 60_000, concurrency: 4 }));
  assert.deepEqual(
    await async.run(rangeInclusive(0, 29)).collect(),
    rangeInclusive(0, 29),
  );
});

Deno.test("map() timeoutMs clears the timers of failed, retried and skipped attempts", async () => {
  const p = pipeline(map((x: number, ctx) => {
    if (x % 3 === 0 && ctx.attempt === 1) throw new Error("retry me");
    if (x % 5 === 0) throw new Error("skip me");
    return x;
  }, {
    timeoutMs: 60_000,
    concurrency: 3,
    onError: "skip",
    retry: { attempts: 2, random: () => 0 },
  }));
  const flow = p.run(rangeInclusive(0, 19));
  assert.deepEqual(
    await flow.collect(),
    rangeInclusive(0, 19).filter((x) => x % 5 !== 0),
  );
  assert.equal(flow.failures.length, 4);
});

Deno.test("map() timeoutMs clears the timers of a run that fails", async () => {
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 3) throw new Error("boom");
    await sleep(5, ctx.signal);
    return x;
  }, { timeoutMs: 60_000, concurrency: 4 }));
  const error = await rejection(p.run(rangeInclusive(0, 9)).collect());
  assert(error instanceof PipelineError);
  assert.equal(error.item, 3);
});

for (const how of ["abort()", "the run's signal"] as const) {
  Deno.test(`map() timeoutMs ctx.signal of a timed attempt aborts with the run's reason when the run is aborted by ${how}`, async () => {
    const signals: AbortSignal[] = [];
    const controller = new AbortController();
    const p = pipeline(map((_: number, ctx) => {
      signals.push(ctx.signal);
      return untilAborted(ctx.signal);
    }, { timeoutMs: 60_000, concurrency: 2 }));
    const flow = p.run([1, 2, 3], { signal: controller.signal });
    const out = rejection(flow.collect());
    await until(() => signals.length === 2, "two calls in flight");
    const reason = new Error("user stop");
    if (how === "abort()") flow.abort(reason);
    else controller.abort(reason);
    assert.equal(await withTimeout(out, 2000, "the abort"), reason);
    for (const signal of signals) {
      assert(signal.aborted);
      assert.equal(signal.reason, reason, "the run's reason, not a timeout");
    }
    assert.equal(signals.length, 2, "nothing started after the abort");
  });
}

Deno.test("map() timeoutMs ctx.signal of a timed attempt aborts when another item fails the run", async () => {
  const signals: AbortSignal[] = [];
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 1) {
      await until(() => signals.length === 1, "item 0 in flight");
      throw new Error("boom");
    }
    signals.push(ctx.signal);
    return await untilAborted(ctx.signal);
  }, { timeoutMs: 60_000, concurrency: 2 }));
  const error = await withTimeout(
    rejection(p.run([0, 1]).collect()),
    2000,
    "the failure",
  );
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.item, 1);
  assert.equal(signals[0].aborted, true);
  assert.equal(signals[0].reason, error);
  assert(!(signals[0].reason instanceof TimeoutError));
});

Deno.test("map() timeoutMs does not affect calls that finish in time", async () => {
  const seen: TaskContext[] = [];
  const p = pipeline(map(async (x: number, ctx) => {
    seen.push(ctx);
    await sleep(2);
    return x;
  }, { timeoutMs: 2000, concurrency: 2 }));
  assert.deepEqual(
    await p.run(rangeInclusive(0, 9)).collect(),
    rangeInclusive(0, 9),
  );
  assert.equal(seen.length, 10);
  for (const ctx of seen) {
    assert.equal(ctx.signal.aborted, false);
    assert.equal(ctx.attempt, 1);
  }
});

Deno.test("map() timeoutMs rejects a bad value at the call site, naming 'timeoutMs'", () => {
  const f = (x: number) => x;
  const cases: [unknown, typeof RangeError | typeof TypeError][] = [
    [0, RangeError],
    [-1, RangeError],
    [NaN, RangeError],
    [-Infinity, RangeError],
    ["5", TypeError],
    [null, TypeError],
    [true, TypeError],
  ];
  for (const [timeoutMs, type] of cases) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => map(f, { timeoutMs: timeoutMs as any }),
      (e: unknown) =>
        e instanceof type && /'timeoutMs'/.test((e as Error).message),
      String(timeoutMs),
    );
  }
  assert.doesNotThrow(() => map(f, { timeoutMs: 1 }));
  assert.doesNotThrow(() => map(f, { timeoutMs: 0.5 }));
});
