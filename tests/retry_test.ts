// map() retry: attempts in all, backoff (exact, capped, full jitter), retryIf,
// task and stage scope, order and concurrency while items back off, abort
// during a backoff, stats and "retrying" events.
import assert from "node:assert/strict";
import {
  type ItemEventDetail,
  map,
  pipeline,
  PipelineError,
  type TaskContext,
} from "../mod.ts";
// Internal: the policy with its defaults filled in, and the backoff formula.
import { backoffDelay, readRetry } from "../lib/retry.ts";
import {
  deferred,
  FakeTime,
  Gates,
  Gauge,
  prng,
  rangeInclusive,
  rejection,
  sleep,
  withTimeout,
} from "./_helpers.ts";

/** An error that remembers which attempt threw it. */
class Flaky extends Error {
  constructor(readonly x: unknown, readonly attempt: number) {
    super(`item ${String(x)} failed on attempt ${attempt}`);
  }
}

// ---- the policy (unit) ------------------------------------------------------

Deno.test("map() retry readRetry fills in the documented defaults", () => {
  assert.equal(readRetry(undefined), undefined);
  const policy = readRetry({})!;
  assert.equal(policy.attempts, 3);
  assert.equal(policy.delayMs, 100);
  assert.equal(policy.factor, 2);
  assert.equal(policy.maxDelayMs, 30_000);
  assert.equal(policy.jitter, true);
  assert.equal(policy.scope, "task");
  assert.equal(policy.random, Math.random);
  assert.equal(policy.retryIf(new Error("x"), {} as TaskContext), true);
});

Deno.test("backoffDelay() never exceeds the longest delay a timer honours, even with maxDelayMs: Infinity", () => {
  const policy = readRetry({
    delayMs: 1000,
    factor: 10,
    maxDelayMs: Infinity,
    jitter: false,
  })!;
  assert.equal(backoffDelay(policy, 2), 10_000);
  assert.equal(backoffDelay(policy, 40), 2 ** 31 - 1);
});

Deno.test("map() retry backoffDelay without jitter is delayMs * factor^(n-1), capped by maxDelayMs", () => {
  const exact = (
    o: { delayMs?: number; factor?: number; maxDelayMs?: number },
    ns: number[],
  ) => ns.map((n) => backoffDelay(readRetry({ ...o, jitter: false })!, n));
  assert.deepEqual(exact({}, [1, 2, 3, 4, 5]), [100, 200, 400, 800, 1600]);
  assert.deepEqual(exact({}, [9, 10, 20]), [25_600, 30_000, 30_000]);
  assert.deepEqual(
    exact({ delayMs: 10, factor: 3, maxDelayMs: 50 }, [1, 2, 3, 4]),
    [10, 30, 50, 50],
  );
  assert.deepEqual(exact({ delayMs: 7, factor: 1 }, [1, 2, 3]), [7, 7, 7]);
  assert.deepEqual(exact({ delayMs: 0 }, [1, 2, 3]), [0, 0, 0]);
  assert.deepEqual(
    exact({ delayMs: 5, factor: 10, maxDelayMs: 1000 }, [1, 2, 3, 4]),
    [5, 50, 500, 1000],
  );
  assert.deepEqual(
    exact({ delayMs: 100, maxDelayMs: 40 }, [1, 2]),
    [40, 40],
    "the cap applies to the first delay too",
  );
});

Deno.test("map() retry backoffDelay with full jitter draws uniformly from [0, delay] with the injected random", () => {
  for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.999999]) {
    const policy = readRetry({
      delayMs: 10,
      factor: 3,
      maxDelayMs: 50,
      random: () => r,
    })!;
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => backoffDelay(policy, n)),
      [10 * r, 30 * r, 50 * r, 50 * r],
      `random ${r}`,
    );
  }
  const rand = prng(1234);
  let draws = 0;
  const policy = readRetry({
    delayMs: 20,
    maxDelayMs: 1000,
    random: () => (draws++, rand()),
  })!;
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < 2000; i++) {
    const n = 1 + (i % 8);
    const cap = Math.min(1000, 20 * 2 ** (n - 1));
    const d = backoffDelay(policy, n);
    assert.ok(d >= 0 && d <= cap, `retry ${n}: ${d} not in [0, ${cap}]`);
    low = Math.min(low, d / cap);
    high = Math.max(high, d / cap);
  }
  assert.equal(draws, 2000, "one draw per delay");
  assert.ok(
    low < 0.05 && high > 0.95,
    `spread over the range: ${low}..${high}`,
  );
});

Deno.test("map() retry rejects bad retry options at the call site, naming the option", () => {
  const f = (x: number) => x;
  const cases: [unknown, typeof RangeError | typeof TypeError, RegExp][] = [
    [{ attempts: 0 }, RangeError, /'retry\.attempts'/],
    [{ attempts: 1.5 }, RangeError, /'retry\.attempts'/],
    [{ attempts: NaN }, RangeError, /'retry\.attempts'/],
    [{ attempts: "3" }, TypeError, /'retry\.attempts'/],
    [{ delayMs: -1 }, RangeError, /'retry\.delayMs'/],
    [{ delayMs: Infinity }, RangeError, /'retry\.delayMs'/],
    [{ factor: 0.5 }, RangeError, /'retry\.factor'/],
    [{ maxDelayMs: NaN }, RangeError, /'retry\.maxDelayMs'/],
    [{ jitter: "yes" }, TypeError, /'retry\.jitter'/],
    [{ retryIf: true }, TypeError, /'retry\.retryIf'/],
    [{ scope: "item" }, TypeError, /'retry\.scope'/],
    [{ random: 0.5 }, TypeError, /'retry\.random'/],
    [null, TypeError, /'retry'/],
    [3, TypeError, /'retry'/],
  ];
  for (const [retry, type, message] of cases) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => map(f, { retry: retry as any }),
      (e: unknown) => e instanceof type && message.test((e as Error).message),
      JSON.stringify(retry),
    );
  }
});

// ---- attempts ---------------------------------------------------------------

Deno.test("map() retry attempts counts tries in all: attempts 3 calls fn 3 times, then fails with the last error", async () => {
  const attempts: number[] = [];
  const p = pipeline(map((x: number, ctx) => {
    attempts.push(ctx.attempt);
    throw new Flaky(x, ctx.attempt);
  }, { name: "flaky", retry: { attempts: 3, random: () => 0 } }));
  const flow = p.run([7]);
  const error = await rejection(flow.collect());
  assert(error instanceof PipelineError, String(error));
  assert.deepEqual(attempts, [1, 2, 3]);
  assert(error.cause instanceof Flaky);
  assert.equal(error.cause.attempt, 3, "the cause is the last attempt's error");
  assert.equal(error.stage, "flaky");
  assert.equal(error.item, 7);
  assert.equal(flow.stats().stages[0].retried, 2);
  assert.equal(flow.stats().stages[0].failed, 1);
});

Deno.test("map() retry attempts: 1 makes no retry", async () => {
  let calls = 0;
  const flow = pipeline(map((x: number) => {
    calls++;
    throw new Flaky(x, calls);
  }, { retry: { attempts: 1, random: () => 0 } })).run([1]);
  const error = await rejection(flow.collect());
  assert(error instanceof PipelineError);
  assert.equal(calls, 1);
  assert.equal(flow.stats().stages[0].retried, 0);
});

Deno.test("map() retry without a retry option a failure is final at once", async () => {
  let calls = 0;
  const error = await rejection(
    pipeline(map((x: number) => {
      calls++;
      throw new Flaky(x, calls);
    }, { timeoutMs: 60_000 })).run([1]).collect(),
  );
  assert(error instanceof PipelineError);
  assert.equal(calls, 1);
});

Deno.test("map() retry succeeds on a later attempt: the result is delivered and ctx.attempt is 1, 2, 3", async () => {
  const attempts = new Map<number, number[]>();
  const p = pipeline(map(async (x: number, ctx) => {
    const seen = attempts.get(x) ?? [];
    seen.push(ctx.attempt);
    attempts.set(x, seen);
    await sleep(0);
    if (x === 1 && ctx.attempt < 3) throw new Flaky(x, ctx.attempt);
    return x * 10;
  }, { retry: { attempts: 3, random: () => 0 } }));
  const flow = p.run([0, 1, 2]);
  assert.deepEqual(await flow.collect(), [0, 10, 20]);
  assert.deepEqual(attempts.get(1), [1, 2, 3]);
  assert.deepEqual(attempts.get(0), [1]);
  assert.deepEqual(
    attempts.get(2),
    [1],
    "a retry does not leak into the next item",
  );
  assert.equal(flow.failures.length, 0);
  const stage = flow.stats().stages[0];
  assert.equal(stage.retried, 2);
  assert.equal(stage.failed, 0);
  assert.equal(stage.completed, 3);
});

// ---- backoff in a run --------------------------------------------------------

Deno.test("map() retry with jitter: false waits at least the backoff delay between attempts", async () => {
  using time = new FakeTime();
  const startedAt: number[] = [];
  const p = pipeline(map((x: number, ctx) => {
    startedAt.push(performance.now());
    if (ctx.attempt < 3) throw new Flaky(x, ctx.attempt);
    return x;
  }, {
    // random: () => 0 would make every delay 0 if jitter were applied anyway.
    retry: {
      attempts: 3,
      delayMs: 40,
      factor: 2,
      jitter: false,
      random: () => 0,
    },
  }));
  const out = p.run([1]).collect();
  await time.runAllAsync();
  assert.deepEqual(await out, [1]);
  assert.equal(startedAt.length, 3);
  // On the fake clock, exactly: 40, then 40 * 2.
  assert.deepEqual(
    startedAt.map((t) => t - startedAt[0]),
    [0, 40, 120],
  );
});

Deno.test("map() retry waits exactly backoffDelay(policy, n) before retry n", async () => {
  // The gaps between attempts on the fake clock: exact values.
  const cases = [
    {
      retry: {
        attempts: 5,
        delayMs: 10,
        factor: 3,
        maxDelayMs: 50,
        jitter: false,
      },
      expected: [10, 30, 50, 50],
    },
    {
      retry: { attempts: 4, delayMs: 8, jitter: true, random: () => 0.25 },
      expected: [2, 4, 8],
    },
  ];
  for (const { retry, expected } of cases) {
    using time = new FakeTime();
    const startedAt: number[] = [];
    const p = pipeline(map((x: number, ctx) => {
      startedAt.push(time.now);
      if (ctx.attempt < retry.attempts) throw new Flaky(x, ctx.attempt);
      return x;
    }, { retry }));
    const out = p.run([1]).collect();
    await time.runAllAsync();
    assert.deepEqual(await out, [1]);
    const delays = startedAt.slice(1).map((t, i) => t - startedAt[i]);
    const policy = readRetry(retry)!;
    assert.deepEqual(delays, expected, JSON.stringify(retry));
    assert.deepEqual(
      delays,
      expected.map((_, i) => backoffDelay(policy, i + 1)),
    );
  }
});

Deno.test("map() retry maxDelayMs caps the wait in a run", async () => {
  using time = new FakeTime();
  const startedAt: number[] = [];
  const p = pipeline(map((x: number, ctx) => {
    startedAt.push(performance.now());
    if (ctx.attempt < 3) throw new Flaky(x, ctx.attempt);
    return x;
  }, {
    retry: { attempts: 3, delayMs: 60_000, maxDelayMs: 20, jitter: false },
  }));
  // withTimeout's timer runs on the fake clock too: an uncapped 60 s delay
  // would let it fire first.
  const out = withTimeout(
    p.run([1]).collect(),
    5000,
    "a 60 s delay capped at 20 ms",
  );
  await time.runAllAsync();
  assert.deepEqual(await out, [1]);
  assert.deepEqual(startedAt.map((t) => t - startedAt[0]), [0, 20, 40]);
});

Deno.test("map() retry with random: () => 0 retries immediately, drawing once per retry", async () => {
  let draws = 0;
  let calls = 0;
  const p = pipeline(map((x: number, ctx) => {
    calls++;
    if (ctx.attempt < 4) throw new Flaky(x, ctx.attempt);
    return x;
  }, {
    retry: { attempts: 4, delayMs: 10_000, random: () => (draws++, 0) },
  }));
  const out = await withTimeout(
    p.run([5, 6]).collect(),
    2000,
    "full jitter with random 0 waits nothing (10 s otherwise)",
  );
  assert.deepEqual(out, [5, 6]);
  assert.equal(calls, 8);
  assert.equal(draws, 6, "one draw per retry");
});

// ---- retryIf -----------------------------------------------------------------

Deno.test("map() retry retryIf receives the error and a ctx with the failed attempt number", async () => {
  const seen: [unknown, number, number, unknown, string][] = [];
  const thrown = new Map<string, unknown[]>();
  const p = pipeline(map((x: string, ctx) => {
    if (ctx.attempt < 3) {
      const error = new Flaky(x, ctx.attempt);
      thrown.set(x, [...thrown.get(x) ?? [], error]);
      throw error;
    }
    return x.toUpperCase();
  }, {
    name: "up",
    retry: {
      attempts: 3,
      random: () => 0,
      retryIf: (error, ctx) => {
        seen.push([error, ctx.attempt, ctx.index, ctx.itemId, ctx.stage]);
        assert.ok(ctx.signal instanceof AbortSignal);
        return true;
      },
    },
  }));
  const out = await p.run(["a", "b"], { id: (item) => `id-${item}` }).collect();
  assert.deepEqual(out, ["A", "B"]);
  const forItem = (id: string) => seen.filter((s) => s[3] === id);
  assert.deepEqual(forItem("id-a"), [
    [thrown.get("a")![0], 1, 0, "id-a", "up"],
    [thrown.get("a")![1], 2, 0, "id-a", "up"],
  ]);
  assert.deepEqual(forItem("id-b"), [
    [thrown.get("b")![0], 1, 1, "id-b", "up"],
    [thrown.get("b")![1], 2, 1, "id-b", "up"],
  ]);
  assert.equal(seen.length, 4, "not asked after the last attempt succeeded");
});

Deno.test("map() retry retryIf returning false makes no retry: the error is final", async () => {
  class Fatal extends Error {}
  const calls: string[] = [];
  const fatal = new Fatal("no point retrying");
  const p = pipeline(map((x: number, ctx) => {
    calls.push(`${x}#${ctx.attempt}`);
    if (x === 0 && ctx.attempt === 1) throw new Flaky(x, 1);
    if (x === 1) throw fatal;
    return x;
  }, {
    retry: {
      attempts: 5,
      random: () => 0,
      retryIf: (error) => !(error instanceof Fatal),
    },
  }));
  // A retryable error is retried...
  assert.deepEqual(await p.run([0]).collect(), [0]);
  assert.deepEqual(calls, ["0#1", "0#2"]);
  // ...one retryIf refuses is not.
  calls.length = 0;
  const flow = p.run([1, 2]);
  const error = await rejection(flow.collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.cause, fatal);
  assert.equal(error.item, 1);
  assert.deepEqual(calls, ["1#1"]);
  assert.equal(flow.stats().stages[0].retried, 0);
});

Deno.test("map() retry retryIf that throws makes no retry and its error becomes the PipelineError cause", async () => {
  const original = new Error("original");
  const fromRetryIf = new Error("retryIf broke");
  let calls = 0;
  let retryIfCalls = 0;
  const flow = pipeline(map((_: number) => {
    calls++;
    throw original;
  }, {
    retry: {
      attempts: 5,
      random: () => 0,
      retryIf: () => {
        retryIfCalls++;
        throw fromRetryIf;
      },
    },
  })).run([1]);
  const error = await rejection(flow.collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.cause, fromRetryIf);
  assert.equal(calls, 1);
  assert.equal(retryIfCalls, 1);
  assert.equal(flow.stats().stages[0].retried, 0);
});

Deno.test("map() retry retryIf that throws with onError skip records the retryIf error", async () => {
  const fromRetryIf = new Error("retryIf broke");
  const flow = pipeline(map((x: number) => {
    if (x === 1) throw new Error("original");
    return x;
  }, {
    onError: "skip",
    retry: {
      random: () => 0,
      retryIf: () => {
        throw fromRetryIf;
      },
    },
  })).run([0, 1, 2]);
  assert.deepEqual(await flow.collect(), [0, 2]);
  assert.equal(flow.failures.length, 1);
  assert.equal(flow.failures[0].error, fromRetryIf);
  assert.equal(flow.failures[0].attempts, 1);
});

// ---- scope -------------------------------------------------------------------

function threeSteps(log: string[], failAt: Record<string, number>) {
  const step = (name: string, f: (x: number) => number) =>
  (
    x: number,
    ctx: TaskContext,
  ) => {
    log.push(`${name}(${x})#${ctx.attempt}`);
    if ((failAt[name] ?? 0) >= ctx.attempt) {
      throw new Flaky(`${name}(${x})`, ctx.attempt);
    }
    return f(x);
  };
  return [
    step("f1", (x) => x + 1),
    step("f2", (x) => x * 10),
    step("f3", (x) => x - 3),
  ] as const;
}

for (const scope of ["task", undefined] as const) {
  Deno.test(`map() retry scope ${scope ?? "(default)"} re-runs only the failing function, with its input`, async () => {
    const log: string[] = [];
    const p = pipeline(map(threeSteps(log, { f2: 1 }), {
      retry: { attempts: 3, random: () => 0, scope },
    }));
    const flow = p.run([1]);
    assert.deepEqual(await flow.collect(), [17]);
    assert.deepEqual(log, ["f1(1)#1", "f2(2)#1", "f2(2)#2", "f3(20)#1"]);
    assert.equal(flow.stats().stages[0].retried, 1);
  });
}

Deno.test("map() retry scope stage re-runs from the first function with the original item", async () => {
  const log: string[] = [];
  const p = pipeline(map(threeSteps(log, { f2: 1 }), {
    retry: { attempts: 3, random: () => 0, scope: "stage" },
  }));
  const flow = p.run([1]);
  assert.deepEqual(await flow.collect(), [17]);
  assert.deepEqual(log, [
    "f1(1)#1",
    "f2(2)#1",
    "f1(1)#2",
    "f2(2)#2",
    "f3(20)#2",
  ]);
  assert.equal(flow.stats().stages[0].retried, 1);
});

Deno.test("map() retry scope task gives each function its own attempts", async () => {
  // attempts 2: f1, f2 and f3 each fail once, which a shared budget of 2
  // would not survive.
  const log: string[] = [];
  const p = pipeline(map(threeSteps(log, { f1: 1, f2: 1, f3: 1 }), {
    retry: { attempts: 2, random: () => 0, scope: "task" },
  }));
  assert.deepEqual(await p.run([1]).collect(), [17]);
  assert.deepEqual(log, [
    "f1(1)#1",
    "f1(1)#2",
    "f2(2)#1",
    "f2(2)#2",
    "f3(20)#1",
    "f3(20)#2",
  ]);

  // f2 failing twice exhausts its own 2 attempts and fails the item.
  const log2: string[] = [];
  const error = await rejection(
    pipeline(map(threeSteps(log2, { f1: 1, f2: 2 }), {
      retry: { attempts: 2, random: () => 0, scope: "task" },
    })).run([1]).collect(),
  );
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof Flaky);
  assert.equal(error.cause.x, "f2(2)");
  assert.equal(error.item, 1, "the error names the item the stage received");
  assert.deepEqual(log2, ["f1(1)#1", "f1(1)#2", "f2(2)#1", "f2(2)#2"]);
});

Deno.test("map() retry scope stage counts attempts for the whole sequence", async () => {
  // attempts 2: f1 fails on attempt 1, f2 on attempt 2: the item fails.
  const log: string[] = [];
  const failAt = { f1: 1, f2: 2 };
  const error = await rejection(
    pipeline(map(threeSteps(log, failAt), {
      retry: { attempts: 2, random: () => 0, scope: "stage" },
    })).run([1]).collect(),
  );
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof Flaky);
  assert.equal(error.cause.x, "f2(2)");
  assert.deepEqual(log, ["f1(1)#1", "f1(1)#2", "f2(2)#2"]);
});

// ---- order and concurrency while retrying ---------------------------------------

Deno.test("map() retry a retrying item keeps its output position in input order", async () => {
  const rand = prng(99);
  const p = pipeline(map(async (x: number, ctx) => {
    await sleep(Math.floor(rand() * 3));
    if (x % 4 === 1 && ctx.attempt < 3) throw new Flaky(x, ctx.attempt);
    return x * 2;
  }, {
    concurrency: 3,
    retry: { attempts: 3, delayMs: 5, jitter: false },
  }));
  const flow = p.run(rangeInclusive(0, 19));
  assert.deepEqual(
    await flow.collect(),
    rangeInclusive(0, 19).map((x) => x * 2),
  );
  assert.equal(flow.stats().stages[0].retried, 10);
});

Deno.test("map() retry a retrying item's result is yielded as soon as it and every earlier item are done", async () => {
  const retried = deferred();
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 0 && ctx.attempt === 1) throw new Flaky(x, 1);
    if (x === 0) await retried.promise;
    return x;
  }, { concurrency: 3, retry: { attempts: 2, random: () => 0 } }));
  const it = p.run([0, 1, 2])[Symbol.asyncIterator]();
  const first = it.next();
  await sleep(20);
  retried.resolve();
  assert.deepEqual(await withTimeout(first, 3000, "item 0"), {
    done: false,
    value: 0,
  });
  assert.deepEqual((await it.next()).value, 1);
  assert.deepEqual((await it.next()).value, 2);
  assert.equal((await it.next()).done, true);
});

Deno.test("map() retry a worker waiting out a backoff does not block other items of the stage", async () => {
  using time = new FakeTime();
  const log: string[] = [];
  const p = pipeline(map(async (x: number, ctx) => {
    log.push(`start ${x}#${ctx.attempt}`);
    await sleep(1);
    if (x === 0 && ctx.attempt === 1) throw new Flaky(x, 1);
    log.push(`done ${x}#${ctx.attempt}`);
    return x;
  }, {
    concurrency: 1,
    retry: { attempts: 2, delayMs: 100, jitter: false },
  }));
  const out = p.run([0, 1]).collect();
  await time.runAllAsync();
  assert.deepEqual(await out, [0, 1]);
  assert.deepEqual(log, [
    "start 0#1",
    "start 1#1",
    "done 1#1",
    "start 0#2",
    "done 0#2",
  ]);
});

Deno.test("map() retry several items backing off do not block items still waiting for a worker", async () => {
  // concurrency 2, items 0 and 1 fail once with a 200 ms backoff: the queued
  // items 2..5 all complete while they back off.
  using time = new FakeTime();
  const completed: number[] = [];
  const retryStarts: number[] = [];
  const p = pipeline(map(async (x: number, ctx) => {
    if (ctx.attempt === 2) retryStarts.push(completed.length);
    await sleep(1);
    if (x < 2 && ctx.attempt === 1) throw new Flaky(x, 1);
    completed.push(x);
    return x;
  }, {
    concurrency: 2,
    retry: { attempts: 2, delayMs: 200, jitter: false },
  }));
  const out = p.run(rangeInclusive(0, 5)).collect();
  await time.runAllAsync();
  assert.deepEqual(await out, rangeInclusive(0, 5));
  assert.deepEqual(completed.slice(0, 4).sort(), [2, 3, 4, 5]);
  assert.equal(retryStarts.length, 2);
  assert.ok(
    retryStarts.every((n) => n >= 4),
    `retries started after ${retryStarts} completions`,
  );
});

Deno.test("map() retry never exceeds concurrency while items fail, back off and come back", async () => {
  const rand = prng(7);
  const gauge = new Gauge();
  let maxBusy = 0;
  const p = pipeline(map(async (x: number, ctx) => {
    gauge.enter();
    maxBusy = Math.max(maxBusy, flow.stats().stages[0].busy);
    try {
      await sleep(Math.floor(rand() * 6));
      if (ctx.attempt <= x % 3) throw new Flaky(x, ctx.attempt);
      return x;
    } finally {
      gauge.leave();
    }
  }, {
    concurrency: 3,
    retry: { attempts: 3, delayMs: 2, random: prng(8) },
  }));
  const flow = p.run(rangeInclusive(0, 59));
  assert.deepEqual(await flow.collect(), rangeInclusive(0, 59));
  assert.ok(gauge.peak <= 3, `peak ${gauge.peak} > concurrency 3`);
  assert.equal(gauge.peak, 3, "the stage was used to the full");
  assert.ok(maxBusy <= 3, `busy ${maxBusy}`);
  assert.equal(flow.stats().stages[0].retried, 20 + 2 * 20);
});

Deno.test("map() retry an item coming back from a backoff into a full stage waits for a slot", async () => {
  const gates = new Gates();
  const gauge = new Gauge();
  const log: string[] = [];
  const zeroFailed = deferred();
  async function* source() {
    yield 0;
    yield 1;
    await zeroFailed.promise; // item 2 arrives while item 0 backs off
    yield 2;
  }
  const p = pipeline(map(async (x: number, ctx) => {
    gauge.enter();
    log.push(`start ${x}#${ctx.attempt}`);
    try {
      if (x === 0 && ctx.attempt === 1) {
        await sleep(1);
        throw new Flaky(x, 1);
      }
      await gates.wait(x);
      log.push(`done ${x}`);
      return x;
    } finally {
      gauge.leave();
    }
  }, {
    concurrency: 2,
    retry: { attempts: 2, delayMs: 30, jitter: false },
  }));
  using time = new FakeTime();
  const t0 = time.now;
  const flow = p.run(source());
  flow.addEventListener("retrying", () => zeroFailed.resolve());
  const out = flow.collect();
  await time.tickAsync(0);
  assert.deepEqual(log, ["start 0#1", "start 1#1"]);
  // Item 0 fails at 1 ms: item 2 starts in the slot it left.
  await time.tickAsync(1);
  assert.deepEqual(log, ["start 0#1", "start 1#1", "start 2#1"]);
  assert.equal(flow.stats().stages[0].backingOff, 1);
  await time.tickAsync(29);
  assert.equal(flow.stats().stages[0].backingOff, 1, "backing off until 31");
  // The backoff ends while items 1 and 2 hold both slots: item 0 waits, for
  // as long as they do.
  await time.tickAsync(1);
  assert.equal(flow.stats().stages[0].backingOff, 0);
  assert.equal(flow.stats().stages[0].queued, 1);
  await time.tickAsync(10_000);
  assert.equal(gauge.current, 2);
  assert.deepEqual(log, ["start 0#1", "start 1#1", "start 2#1"]);
  assert.equal(flow.stats().stages[0].queued, 1);
  assert.equal(time.pending, 0, "no timer: item 0 waits for a slot only");
  // The slot item 1 leaves goes to item 0, with no time passing.
  const freedAt = time.now;
  gates.open(1);
  await time.tickAsync(0);
  assert.deepEqual(log.slice(3), ["done 1", "start 0#2"]);
  assert.equal(time.now, freedAt);
  gates.open(0);
  gates.open(2);
  await time.tickAsync(0);
  assert.deepEqual(await out, [0, 1, 2]);
  assert.equal(gauge.peak, 2);
  assert.ok(log.indexOf("done 1") < log.indexOf("start 0#2"), log.join());
  assert.equal(time.now - t0, 10_031);
});

// ---- cancellation ------------------------------------------------------------

Deno.test("map() retry an abort during a long backoff settles promptly and never retries", async () => {
  let calls = 0;
  const p = pipeline(map((x: number) => {
    calls++;
    throw new Flaky(x, calls);
  }, { retry: { attempts: 3, delayMs: 10_000, jitter: false } }));
  using time = new FakeTime();
  const flow = p.run([1]);
  const settled: string[] = [];
  const out = rejection(flow.collect()).finally(() => settled.push("run"));
  await time.tickAsync(0);
  assert.equal(flow.stats().stages[0].backingOff, 1, "the backoff");
  assert.equal(time.pending, 1, "the 10 s backoff timer");
  const abortedAt = time.now;
  const reason = new Error("stop");
  const aborted = flow.abort(reason).finally(() => settled.push("abort()"));
  // Promptly: with no time passing.
  await time.tickAsync(0);
  assert.deepEqual(settled.toSorted(), ["abort()", "run"]);
  assert.equal(time.now, abortedAt);
  assert.equal(await out, reason);
  await aborted;
  assert.equal(time.pending, 0, "the 10 s backoff timer is cleared");
  // Well past the backoff's end: still no retry.
  await time.tickAsync(60_000);
  assert.equal(calls, 1, "no retry after the abort");
  assert.equal(flow.stats().stages[0].backingOff, 0);
  assert.equal(flow.stats().done, true);
});

Deno.test("map() retry an abort through the run's signal during a backoff settles promptly", async () => {
  let calls = 0;
  const controller = new AbortController();
  const p = pipeline(map((x: number) => {
    calls++;
    throw new Flaky(x, calls);
  }, { retry: { attempts: 5, delayMs: 10_000, jitter: false } }));
  using time = new FakeTime();
  const flow = p.run([1], { signal: controller.signal });
  let settled = false;
  const out = rejection(flow.collect()).finally(() => settled = true);
  await time.tickAsync(0);
  assert.equal(flow.stats().stages[0].backingOff, 1, "the backoff");
  const abortedAt = time.now;
  controller.abort("gone");
  // Promptly: with no time passing.
  await time.tickAsync(0);
  assert.equal(settled, true);
  assert.equal(time.now, abortedAt);
  assert.equal(await out, "gone");
  assert.equal(time.pending, 0, "the 10 s backoff timer is cleared");
  await time.tickAsync(60_000);
  assert.equal(calls, 1);
  assert.equal(flow.stats().stages[0].backingOff, 0);
});

Deno.test("map() retry a call failing because of the abort is not retried", async () => {
  let calls = 0;
  const retrying: unknown[] = [];
  const p = pipeline(map((_: number, ctx) => {
    calls++;
    return new Promise((_, reject) => {
      ctx.signal.addEventListener(
        "abort",
        () => reject(ctx.signal.reason),
        { once: true },
      );
    });
  }, { retry: { attempts: 5, random: () => 0 } }));
  using time = new FakeTime();
  const flow = p.run([1]);
  flow.addEventListener("retrying", (e) => retrying.push(e.detail));
  const out = rejection(flow.collect());
  await time.tickAsync(0);
  assert.equal(calls, 1, "the first call");
  const reason = new Error("stop");
  await flow.abort(reason);
  assert.equal(await out, reason);
  // A retry would come after a 0 ms backoff (random: () => 0): none comes.
  await time.tickAsync(10_000);
  assert.equal(calls, 1);
  assert.deepEqual(retrying, []);
  assert.equal(time.pending, 0);
});

Deno.test("map() retry a final failure elsewhere cancels pending backoffs at once", async () => {
  class Fatal extends Error {}
  const calls: string[] = [];
  const p = pipeline(map(async (x: number, ctx) => {
    calls.push(`${x}#${ctx.attempt}`);
    if (x === 0) throw new Flaky(x, ctx.attempt);
    await sleep(20);
    throw new Fatal("fatal");
  }, {
    concurrency: 2,
    retry: {
      attempts: 3,
      delayMs: 10_000,
      jitter: false,
      retryIf: (error) => !(error instanceof Fatal),
    },
  }));
  using time = new FakeTime();
  const t0 = time.now;
  let settled = false;
  const out = rejection(p.run([0, 1]).collect()).finally(() => settled = true);
  await time.tickAsync(19);
  assert.equal(settled, false);
  assert.equal(time.pending, 2, "item 0's 10 s backoff and item 1's sleep");
  // Item 1 fails for good at 20 ms: the run settles then, not at 10 s.
  await time.tickAsync(1);
  assert.equal(settled, true);
  assert.equal(time.now - t0, 20);
  assert.equal(time.pending, 0, "item 0's backoff timer is cleared");
  const error = await out;
  assert(error instanceof PipelineError, String(error));
  assert(error.cause instanceof Fatal);
  assert.equal(error.item, 1);
  await time.tickAsync(60_000);
  assert.deepEqual(calls, ["0#1", "1#1"]);
});

// ---- stats and events ----------------------------------------------------------

Deno.test("map() retry stats().stages[i].retried counts the retries of each stage", async () => {
  const p = pipeline(
    map((x: number, ctx) => {
      if (x % 2 === 0 && ctx.attempt < 3) throw new Flaky(x, ctx.attempt);
      return x;
    }, { name: "a", retry: { attempts: 3, random: () => 0 } }),
    map((x: number, ctx) => {
      if (x === 3 && ctx.attempt === 1) throw new Flaky(x, ctx.attempt);
      return x;
    }, { name: "b", retry: { attempts: 3, random: () => 0 } }),
    map((x: number) => x, { name: "c", retry: { random: () => 0 } }),
  );
  const flow = p.run(rangeInclusive(0, 5));
  assert.deepEqual(await flow.collect(), rangeInclusive(0, 5));
  const stages = flow.stats().stages;
  assert.deepEqual(stages.map((s) => s.retried), [6, 1, 0]);
  assert.deepEqual(stages.map((s) => s.completed), [6, 6, 6]);
  assert.deepEqual(stages.map((s) => s.failed), [0, 0, 0]);
  assert.deepEqual(stages.map((s) => s.backingOff), [0, 0, 0]);
});

Deno.test("map() retry fires a 'retrying' event per retry with the failed attempt and its error", async () => {
  const thrown: Flaky[] = [];
  const p = pipeline(map((x: number, ctx) => {
    if (x === 1 && ctx.attempt < 3) {
      const error = new Flaky(x, ctx.attempt);
      thrown.push(error);
      throw error;
    }
    return x;
  }, { name: "net", retry: { attempts: 3, random: () => 0 } }));
  const flow = p.run([0, 1, 2], { id: (x) => `item-${x}` });
  const retrying: ItemEventDetail[] = [];
  const started: [number, number][] = [];
  flow.addEventListener("retrying", (e) => retrying.push(e.detail));
  flow.addEventListener(
    "started",
    (e) => started.push([e.detail.index, e.detail.attempt]),
  );
  assert.deepEqual(await flow.collect(), [0, 1, 2]);
  assert.equal(retrying.length, 2);
  for (const [i, detail] of retrying.entries()) {
    assert.equal(detail.attempt, i + 1);
    assert.equal(detail.error, thrown[i]);
    assert.equal(detail.index, 1);
    assert.equal(detail.itemId, "item-1");
    assert.equal(detail.stage, "net");
    assert.equal(detail.workerId, 0);
    assert.equal(typeof detail.timestamp, "number");
  }
  assert.deepEqual(
    started.filter(([index]) => index === 1).map(([, attempt]) => attempt),
    [1, 2, 3],
  );
  assert.equal(started.length, 5);
});

// Last in the file: when the engine is wrong, the 10 s timer it leaves behind
// must not be blamed on a later test.
Deno.test("map() retry an abort from a 'retrying' listener leaves no backoff timer behind", async () => {
  let calls = 0;
  const p = pipeline(map((x: number) => {
    calls++;
    throw new Flaky(x, calls);
  }, { retry: { attempts: 5, delayMs: 10_000, jitter: false } }));
  const flow = p.run([1]);
  const reason = new Error("enough");
  flow.addEventListener("retrying", () => flow.abort(reason));
  const out = rejection(flow.collect());
  assert.equal(await withTimeout(out, 2000, "abort in a listener"), reason);
  assert.equal(calls, 1);
  assert.equal(flow.stats().stages[0].backingOff, 0);
  // The leak sanitizer fails the test if the 10 s backoff timer was started.
});
