// Tests of Batcher (lib/batcher.ts). Time-dependent cases run on FakeTime (a
// virtual clock), so they assert exact send times as well as batch
// composition and order.
import assert from "node:assert/strict";
import {
  type BatchContext,
  Batcher,
  type BatcherStats,
  QueueFullError,
} from "../mod.ts";
import {
  deferred,
  FakeTime,
  Gates,
  Gauge,
  prng,
  rangeInclusive,
  sleep,
  tick,
  until,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";
import { main as example } from "../examples/batcher.ts";

/** Lets every pending microtask run (no timer turn). */
async function microtasks(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** The accounting invariant of BatcherStats. */
function assertAccounted(s: BatcherStats): void {
  assert.equal(
    s.calls,
    s.succeeded + s.failed + s.cancelled + s.pending + s.waiting + s.inFlight,
    JSON.stringify(s),
  );
}

// ---------------------------------------------------------------------------
// The seed's cases

Deno.test("Batcher.process() async-batcher README case: 10 items, maxSize 5, concurrency 2 run as two batches of 5 at once", async () => {
  const gates = new Gates<number>();
  const batches: number[][] = [];
  const gauge = new Gauge();
  const batcher = new Batcher(async (xs: number[], ctx) => {
    const n = batches.push([...xs]) - 1;
    gauge.enter();
    assert(ctx.workerId === 0 || ctx.workerId === 1);
    await gates.wait(n);
    gauge.leave();
    return xs.map((x) => x * 2);
  }, { maxSize: 5, maxWaitMs: 2000, concurrency: 2 });
  const results = Promise.all(
    rangeInclusive(0, 9).map((x) => batcher.process(x)),
  );
  await until(() => gates.started.length === 2, "both batches to start");
  // Both are in flight together: neither has been released yet.
  assert.equal(gauge.current, 2);
  assert.deepEqual(batches, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
  assert.equal(batcher.stats().running, 2);
  gates.open(1);
  gates.open(0);
  assert.deepEqual(await results, rangeInclusive(0, 9).map((x) => x * 2));
  assert.equal(gauge.peak, 2);
  await batcher.close();
});

// async-batcher's arrival pattern, from the composition its description gives
// (batch 10, 0.2 s window, batches [0..4], [5..14], [15..24], [25..29]): 5
// items at 0 s, 10 at 0.25 s, 15 at 0.4 s.
Deno.test("Batcher.process() arrival pattern: 5 items at 0 s, 10 at 0.25 s, 15 at 0.4 s give [0..4], [5..14], [15..24], [25..29]", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const batches: number[][] = [];
  const sentAt: number[] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    sentAt.push(time.now - t0);
    return xs;
  }, { maxSize: 10, maxWaitMs: 200 });
  const all: Promise<number>[] = [];
  const send = (from: number, to: number) => {
    for (const x of rangeInclusive(from, to)) all.push(batcher.process(x));
  };
  send(0, 4);
  await time.tickAsync(250);
  send(5, 14);
  await time.tickAsync(150);
  send(15, 29);
  const results = Promise.all(all);
  await time.tickAsync(200);
  assert.deepEqual(await results, rangeInclusive(0, 29));
  assert.deepEqual(batches, [
    rangeInclusive(0, 4),
    rangeInclusive(5, 14),
    rangeInclusive(15, 24),
    rangeInclusive(25, 29),
  ]);
  // The window's end, full batches at once, and the last window's end.
  assert.deepEqual(sentAt, [200, 250, 400, 600]);
  await batcher.close();
});

Deno.test("Batcher.process() maxWaitMs is a hard bound from the first item of a forming batch, not per arrival", async () => {
  // Items at 0, 150 and 300 ms with a 200 ms window: a window restarted by
  // each arrival would hold all three; the hard bound sends [0, 1] at 200 ms.
  using time = new FakeTime();
  const batches: number[][] = [];
  const sentAt: number[] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    sentAt.push(performance.now());
    return xs;
  }, { maxSize: 10, maxWaitMs: 200 });
  const t0 = performance.now();
  const a = batcher.process(0);
  await time.tickAsync(150);
  const b = batcher.process(1);
  await time.tickAsync(150);
  const c = batcher.process(2);
  const results = Promise.all([a, b, c]);
  await time.tickAsync(200);
  assert.deepEqual(await results, [0, 1, 2]);
  assert.deepEqual(batches, [[0, 1], [2]]);
  // Exactly at the first item's window end; [2] at its own window's end.
  assert.deepEqual(sentAt.map((t) => t - t0), [200, 500]);
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Batching rules

Deno.test("Batcher.process() a full batch goes at once, without waiting for maxWaitMs", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    return xs;
  }, { maxSize: 3, maxWaitMs: 60_000 });
  const p = Promise.all([1, 2, 3].map((x) => batcher.process(x)));
  assert.deepEqual(await withTimeout(p, 2000, "a full batch"), [1, 2, 3]);
  assert.deepEqual(batches, [[1, 2, 3]]);
  await batcher.close();
});

Deno.test("Batcher.process() never calls processBatch inside process(): a synchronous loop is batched as a whole", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    return xs;
  }, { maxSize: 100, concurrency: Infinity });
  const all = rangeInclusive(0, 249).map((x) => batcher.process(x));
  assert.equal(batches.length, 0); // nothing ran synchronously
  assert.deepEqual(await Promise.all(all), rangeInclusive(0, 249));
  assert.deepEqual(batches.map((b) => b.length), [100, 100, 50]);
  assert.deepEqual(batches.flat(), rangeInclusive(0, 249));
  await batcher.close();
});

Deno.test("Batcher.process() maxWaitMs: 0 (the default) sends a partial batch after the current synchronous code", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    return xs;
  }, { maxSize: 10 });
  const p = Promise.all([1, 2, 3].map((x) => batcher.process(x)));
  await microtasks();
  assert.deepEqual(batches, [[1, 2, 3]]);
  await p;
  await batcher.close();
});

Deno.test("Batcher.process() with every slot busy, items keep queueing and go out in the next batches as slots free", async () => {
  using time = new FakeTime();
  const gates = new Gates<number>();
  const batches: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    const n = batches.push([...xs]) - 1;
    await gates.wait(n);
    return xs;
  }, { maxSize: 3, maxWaitMs: 10, concurrency: 1 });
  const all = rangeInclusive(0, 2).map((x) => batcher.process(x));
  await time.tickAsync(0);
  assert.equal(batches.length, 1);
  for (const x of rangeInclusive(3, 7)) all.push(batcher.process(x));
  await time.tickAsync(40); // [6, 7] is now due, but no slot is free
  assert.equal(batches.length, 1);
  assert.deepEqual(batcher.stats().pending, 5);
  gates.open(0);
  // The next batch starts as soon as the slot frees: no timer in between.
  await microtasks();
  assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5]]);
  gates.open(1);
  await microtasks();
  assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6, 7]]);
  gates.open(2);
  assert.deepEqual(await Promise.all(all), rangeInclusive(0, 7));
  await batcher.close();
});

Deno.test("Batcher.process() never runs more than concurrency batches, with workerIds in 0..concurrency-1", async () => {
  using time = new FakeTime();
  const gauge = new Gauge();
  const ids = new Set<number>();
  const batcher = new Batcher(async (xs: number[], ctx) => {
    gauge.enter();
    ids.add(ctx.workerId);
    await sleep(1 + (xs[0] % 3));
    gauge.leave();
    return xs;
  }, { maxSize: 4, maxWaitMs: 2, concurrency: 3 });
  const all: Promise<number>[] = [];
  for (let wave = 0; wave < 10; wave++) {
    for (const x of rangeInclusive(wave * 10, wave * 10 + 9)) {
      all.push(batcher.process(x));
    }
    await time.tickAsync(1);
  }
  const results = Promise.all(all);
  await time.runAllAsync();
  assert.deepEqual(await results, rangeInclusive(0, 99));
  assert.equal(gauge.peak, 3);
  assert.deepEqual([...ids].sort(), [0, 1, 2]);
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Results

Deno.test("Batcher.process() resolves each caller with its own item's result", async () => {
  const batcher = new Batcher(
    (xs: string[]) => xs.map((x) => x.toUpperCase()),
    { maxSize: 3, maxWaitMs: 5 },
  );
  const r = await Promise.all(
    ["a", "b", "c", "d"].map((x) => batcher.process(x)),
  );
  assert.deepEqual(r, ["A", "B", "C", "D"]);
  await batcher.close();
});

Deno.test("Batcher.process() an Error instance in the results rejects that item alone", async () => {
  const boom = new Error("no such key: 2");
  const batcher = new Batcher(
    (xs: number[]) => xs.map((x) => x === 2 ? boom : x * 10),
    { maxSize: 3 },
  );
  const r = await Promise.allSettled([1, 2, 3].map((x) => batcher.process(x)));
  assert.deepEqual(r, [
    { status: "fulfilled", value: 10 },
    { status: "rejected", reason: boom },
    { status: "fulfilled", value: 30 },
  ]);
  const s = batcher.stats();
  assert.equal(s.succeeded, 2);
  assert.equal(s.failed, 1);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher.process() a wrong-length result rejects every item of the batch, naming both lengths", async () => {
  const batcher = new Batcher((xs: number[]) => xs.slice(1), { maxSize: 3 });
  const r = await Promise.allSettled([1, 2, 3].map((x) => batcher.process(x)));
  for (const s of r) {
    assert.equal(s.status, "rejected");
    const e = (s as PromiseRejectedResult).reason;
    assert(e instanceof RangeError);
    assert.match(e.message, /returned 2 results for a batch of 3 items/);
  }
  // The next batch is not affected.
  const ok = new Batcher((xs: number[]) => xs, { maxSize: 3 });
  assert.equal(await ok.process(4), 4);
  await Promise.all([batcher.close(), ok.close()]);
});

Deno.test('Batcher.process() a wrong-length or non-array result for a batch of 1 says "1 item" and "1 result"', async () => {
  const cases: [(xs: number[]) => unknown, RegExp][] = [
    [() => [], /^processBatch returned 0 results for a batch of 1 item: /],
    [
      (xs) => [...xs, ...xs],
      /^processBatch returned 2 results for a batch of 1 item: /,
    ],
    [() => null, /: it returned null for a batch of 1 item$/],
  ];
  for (const [fn, message] of cases) {
    const batcher = new Batcher(
      fn as unknown as (xs: number[]) => number[],
      { maxSize: 1 },
    );
    await assert.rejects(batcher.process(1), { message });
    await batcher.close();
  }
  // One result for two items: "1 result", "2 items".
  const two = new Batcher((xs: number[]) => xs.slice(1), { maxSize: 2 });
  const r = await Promise.allSettled([1, 2].map((x) => two.process(x)));
  for (const s of r) {
    assert.match(
      (s as PromiseRejectedResult).reason.message,
      /^processBatch returned 1 result for a batch of 2 items: /,
    );
  }
  await two.close();
});

Deno.test("Batcher.process() results are checked against the batch processBatch was given, even if it emptied its items array", async () => {
  const batcher = new Batcher((items: number[]) => {
    const out: number[] = [];
    while (items.length > 0) out.push(items.shift()! * 10); // consumes them
    return out;
  }, { maxSize: 3 });
  assert.deepEqual(
    await Promise.all([1, 2, 3].map((x) => batcher.process(x))),
    [10, 20, 30],
  );
  await batcher.close();
});

Deno.test("Batcher.process() a result that is not an array rejects every item of the batch with a TypeError", async () => {
  const batcher = new Batcher(
    (() => undefined) as unknown as (xs: number[]) => number[],
    { maxSize: 2 },
  );
  const r = await Promise.allSettled([1, 2].map((x) => batcher.process(x)));
  for (const s of r) {
    assert.equal(s.status, "rejected");
    assert.match(
      String((s as PromiseRejectedResult).reason),
      /TypeError: processBatch must return an array.*undefined for a batch of 2 items/,
    );
  }
  await batcher.close();
});

Deno.test("Batcher.process() a throw (sync or async) rejects the batch's items, and only them", async () => {
  for (const sync of [true, false]) {
    const boom = new Error("backend down");
    const batcher = new Batcher((xs: number[]) => {
      if (xs[0] === 0) {
        if (sync) throw boom;
        return Promise.reject(boom);
      }
      return xs;
    }, { maxSize: 2 });
    const first = [0, 1].map((x) => batcher.process(x));
    await Promise.allSettled(first);
    const second = [2, 3].map((x) => batcher.process(x));
    for (const p of first) await assert.rejects(p, (e) => e === boom);
    assert.deepEqual(await Promise.all(second), [2, 3]);
    await batcher.close();
  }
});

// ---------------------------------------------------------------------------
// Retry

Deno.test("Batcher.process() retry re-runs a failed batch with backoff; ctx.attempt counts and workerId stays", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const seen: [number, number][] = [];
  const startedAt: number[] = [];
  let calls = 0;
  const batcher = new Batcher((xs: number[], ctx) => {
    seen.push([ctx.attempt, ctx.workerId]);
    startedAt.push(time.now - t0);
    if (++calls < 3) throw new Error(`fail ${calls}`);
    return xs;
  }, {
    maxSize: 2,
    concurrency: 2,
    retry: { attempts: 3, delayMs: 20, jitter: false },
  });
  const results = Promise.all([batcher.process(1), batcher.process(2)]);
  await time.tickAsync(59);
  assert.equal(calls, 2);
  await time.tickAsync(1);
  assert.deepEqual(await results, [1, 2]);
  // Backoff 20 then 40 ms, exactly.
  assert.deepEqual(startedAt, [0, 20, 60]);
  assert.deepEqual(seen, [[1, 0], [2, 0], [3, 0]]);
  assert.equal(batcher.stats().retries, 2);
  assert.equal(batcher.stats().batchesSent, 1);
  await batcher.close();
});

Deno.test("Batcher.process() retry sends the batch's own items again when processBatch reordered its array in place: no caller gets another's result", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((items: number[], ctx) => {
    batches.push([...items]);
    const given = [...items];
    items.sort((a, b) => b - a); // in place, for its own use
    if (ctx.attempt === 1) throw new Error("flaky");
    return given.map((x) => x * 10); // in the order it was given
  }, { maxSize: 3, retry: { attempts: 2, delayMs: 0 } });
  assert.deepEqual(
    await Promise.all([1, 2, 3].map((x) => batcher.process(x))),
    [10, 20, 30],
  );
  assert.deepEqual(batches, [[1, 2, 3], [1, 2, 3]]);
  await batcher.close();
});

Deno.test("Batcher.process() retry waits backoffDelay between attempts (delays read on a fake clock)", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const startedAt: number[] = [];
  const batcher = new Batcher((xs: number[]) => {
    if (startedAt.push(time.now - t0) < 4) throw new Error("again");
    return xs;
  }, {
    maxSize: 1,
    retry: {
      attempts: 4,
      delayMs: 3,
      factor: 3,
      maxDelayMs: 20,
      jitter: false,
    },
  });
  const p = batcher.process(1);
  await time.runAllAsync();
  assert.equal(await p, 1);
  // Waits of 3, 9 and 20 (capped from 27) ms.
  assert.deepEqual(startedAt, [0, 3, 12, 32]);
  await batcher.close();
});

Deno.test("Batcher.process() retry gives up after attempts and rejects with the last error", async () => {
  let calls = 0;
  const batcher = new Batcher((_xs: number[]): number[] => {
    throw new Error(`fail ${++calls}`);
  }, { maxSize: 1, retry: { attempts: 3, delayMs: 0 } });
  await assert.rejects(batcher.process(1), { message: "fail 3" });
  assert.equal(calls, 3);
  await batcher.close();
});

Deno.test("Batcher.process() retry: retryIf false makes no retry; a retryIf that throws makes its error the callers'", async () => {
  const seen: [string, number][] = [];
  const batcher = new Batcher((_xs: number[]): number[] => {
    throw new Error("fatal");
  }, {
    maxSize: 1,
    retry: {
      delayMs: 0,
      retryIf: (e, ctx: BatchContext) => {
        seen.push([(e as Error).message, ctx.attempt]);
        return false;
      },
    },
  });
  await assert.rejects(batcher.process(1), { message: "fatal" });
  assert.deepEqual(seen, [["fatal", 1]]);
  await batcher.close();

  const oops = new Error("retryIf broke");
  const b2 = new Batcher((_xs: number[]): number[] => {
    throw new Error("fatal");
  }, {
    maxSize: 1,
    retry: {
      retryIf: () => {
        throw oops;
      },
    },
  });
  await assert.rejects(b2.process(1), (e) => e === oops);
  await b2.close();
});

Deno.test("Batcher.process() retry: per-item Error results and wrong lengths are final (no retry)", async () => {
  let calls = 0;
  const batcher = new Batcher((xs: number[]) => {
    calls++;
    return xs.map(() => new Error("bad item"));
  }, { maxSize: 1, retry: { attempts: 5, delayMs: 0 } });
  await assert.rejects(batcher.process(1), { message: "bad item" });
  assert.equal(calls, 1);
  await batcher.close();
});

Deno.test("Batcher.process() retry: a caller that aborted during the backoff leaves the next attempt", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[], ctx) => {
    batches.push([...xs]);
    if (ctx.attempt === 1) throw new Error("once");
    return xs;
  }, { maxSize: 3, retry: { attempts: 2, delayMs: 30, jitter: false } });
  const c = new AbortController();
  const a = batcher.process(1);
  const b = batcher.process(2, { signal: c.signal });
  const d = batcher.process(3);
  await until(() => batches.length === 1, "the first attempt");
  c.abort(new Error("left"));
  await assert.rejects(b, { message: "left" });
  assert.deepEqual(await Promise.all([a, d]), [1, 3]);
  assert.deepEqual(batches, [[1, 2, 3], [1, 3]]);
  await batcher.close();
});

Deno.test("Batcher.close() force during a retry backoff: no retry, callers reject at once, no timer left", async () => {
  let calls = 0;
  const batcher = new Batcher((_xs: number[]): number[] => {
    calls++;
    throw new Error("down");
  }, { maxSize: 1, retry: { attempts: 5, delayMs: 60_000 } });
  const p = batcher.process(1);
  await until(() => calls === 1, "the first attempt");
  await microtasks();
  await withTimeout(batcher.close({ force: true }), 2000, "close");
  await assert.rejects(p, { name: "AbortError" });
  assert.equal(calls, 1);
});

Deno.test("Batcher.stats() retries counts only the retry attempts that ran, not a backoff cut short by an abort or a force close", async () => {
  for (const end of ["abort", "force"] as const) {
    let calls = 0;
    const batcher = new Batcher((_xs: number[]): number[] => {
      calls++;
      throw new Error("down");
    }, { maxSize: 1, retry: { attempts: 5, delayMs: 60_000 } });
    const c = new AbortController();
    const p = batcher.process(1, { signal: c.signal });
    await until(() => calls === 1, "the first attempt");
    await microtasks(); // the batch is backing off now
    assert.equal(batcher.stats().running, 1);
    if (end === "abort") c.abort(new Error("gone"));
    await withTimeout(batcher.close({ force: end === "force" }), 2000, end);
    await assert.rejects(p);
    assert.equal(calls, 1);
    const s = batcher.stats();
    assert.equal(s.retries, 0, end); // processBatch ran once: no retry
    assert.equal(s.batchesSent + s.retries, calls);
    assertAccounted(s);
  }
});

// ---------------------------------------------------------------------------
// Backpressure

Deno.test("Batcher.process() maxQueueSize with onFull wait: process waits for room, first come first served", async () => {
  const gates = new Gates<number>();
  const batches: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    const n = batches.push([...xs]) - 1;
    await gates.wait(n);
    return xs;
  }, { maxSize: 2, maxQueueSize: 2 });
  const all = rangeInclusive(0, 7).map((x) => batcher.process(x));
  await until(() => batches.length === 1, "the first batch");
  // [0, 1] runs; [2, 3] fill the queue; 4..7 wait for room.
  let s = batcher.stats();
  assert.deepEqual([s.running, s.pending, s.waiting], [1, 2, 4]);
  assertAccounted(s);
  gates.open(0);
  await until(() => batches.length === 2, "the second batch");
  s = batcher.stats();
  assert.deepEqual([s.running, s.pending, s.waiting], [1, 2, 2]);
  gates.openAll();
  for (let i = 2; i < 4; i++) {
    await until(() => batches.length > i, `batch ${i}`);
    gates.openAll();
  }
  assert.deepEqual(await Promise.all(all), rangeInclusive(0, 7));
  assert.deepEqual(batches, [[0, 1], [2, 3], [4, 5], [6, 7]]);
  await batcher.close();
});

Deno.test("Batcher.process() a batch opened by a call that waited for room waits maxWaitMs from when that call joined it", async () => {
  // [1, 2] fill the queue and leave at 200 ms; 3 waited for room since 0 ms
  // and joins a new batch then; 4 comes at 300 ms. The new batch's bound runs
  // from 200 ms (when 3 joined), as for a call that never waited, so 4 joins
  // it: [3, 4] at 400 ms. (Timed from 3's process() call, the batch left at
  // once, alone, for the first 256 calls only: those are the timed ones.)
  using time = new FakeTime();
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    return xs;
  }, { maxSize: 3, maxQueueSize: 2, maxWaitMs: 200 });
  const all = [1, 2, 3].map((x) => batcher.process(x));
  assert.equal(batcher.stats().waiting, 1);
  await time.tickAsync(199);
  assert.deepEqual(batches, []);
  await time.tickAsync(1);
  assert.deepEqual(batches, [[1, 2]]);
  await time.tickAsync(100);
  assert.deepEqual(batches, [[1, 2]]);
  all.push(batcher.process(4));
  await time.tickAsync(99); // 3's batch goes at 400 ms, not 200 + 200 from 0
  assert.deepEqual(batches, [[1, 2]]);
  await time.tickAsync(1);
  assert.deepEqual(await Promise.all(all), [1, 2, 3, 4]);
  assert.deepEqual(batches, [[1, 2], [3, 4]]);
  await batcher.close();
});

Deno.test("Batcher.process() a signal aborts the wait for room; the call never reaches processBatch", async () => {
  const gate = deferred();
  const batches: string[][] = [];
  const batcher = new Batcher(async (xs: string[]) => {
    batches.push([...xs]);
    await gate.promise;
    return xs;
  }, { maxSize: 1, maxQueueSize: 1 });
  const a = batcher.process("a"); // runs
  await until(() => batches.length === 1, "a to run");
  const b = batcher.process("b"); // queued
  const c = new AbortController();
  const w = batcher.process("w", { signal: c.signal }); // waits for room
  const d = batcher.process("d"); // waits behind it
  assert.equal(batcher.stats().waiting, 2);
  c.abort(new Error("gave up"));
  await assert.rejects(w, { message: "gave up" });
  assert.equal(batcher.stats().waiting, 1);
  gate.resolve();
  assert.deepEqual(await Promise.all([a, b, d]), ["a", "b", "d"]);
  assert.deepEqual(batches, [["a"], ["b"], ["d"]]);
  await batcher.close();
});

Deno.test("Batcher.process() maxQueueSize with onFull reject rejects with a QueueFullError", async () => {
  const batcher = new Batcher((xs: number[]) => xs, {
    maxSize: 10,
    maxQueueSize: 3,
    onFull: "reject",
    maxWaitMs: 10,
  });
  const r = await Promise.allSettled(
    rangeInclusive(1, 5).map((x) => batcher.process(x)),
  );
  assert.deepEqual(r.slice(0, 3).map((s) => s.status), [
    "fulfilled",
    "fulfilled",
    "fulfilled",
  ]);
  for (const s of r.slice(3)) {
    const e = (s as PromiseRejectedResult).reason;
    assert(e instanceof QueueFullError);
    assert.equal(e.maxQueueSize, 3);
  }
  // Room again once the batch has gone.
  assert.equal(await batcher.process(6), 6);
  assert.equal(batcher.stats().calls, 4); // refused calls are not counted
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Cancellation by a caller

Deno.test("Batcher.process() abort of one caller removes its item; the others of the same batch still resolve", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    batches.push([...xs]);
    return xs.map((x) => x * 2);
  }, { maxSize: 10, maxWaitMs: 20 });
  const c = new AbortController();
  const reason = new Error("not needed");
  const a = batcher.process(1);
  const b = batcher.process(2, { signal: c.signal });
  const d = batcher.process(3);
  c.abort(reason);
  await assert.rejects(b, (e) => e === reason);
  assert.deepEqual(await Promise.all([a, d]), [2, 6]);
  assert.deepEqual(batches, [[1, 3]]);
  const s = batcher.stats();
  assert.equal(s.cancelled, 1);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher.process() abort after the batch was sent rejects at once; the result is dropped, others unaffected", async () => {
  const gate = deferred();
  let signal: AbortSignal | undefined;
  const batcher = new Batcher(async (xs: number[], ctx) => {
    signal = ctx.signal;
    await gate.promise;
    return xs.map((x) => x * 2);
  }, { maxSize: 3 });
  const c = new AbortController();
  const a = batcher.process(1);
  const b = batcher.process(2, { signal: c.signal });
  const d = batcher.process(3);
  await until(() => signal !== undefined, "the batch to start");
  c.abort("bye");
  // Rejected at once, while the batch still runs.
  await assert.rejects(withTimeout(b, 1000, "b"), (e) => e === "bye");
  assert.equal(signal!.aborted, false); // others still want the batch
  gate.resolve();
  assert.deepEqual(await Promise.all([a, d]), [2, 6]);
  await batcher.close();
});

Deno.test("Batcher.process() an aborted call's place in its forming batch is not reused", async () => {
  const batches: string[][] = [];
  const batcher = new Batcher((xs: string[]) => {
    batches.push([...xs]);
    return xs;
  }, { maxSize: 3, maxWaitMs: 60_000 });
  const c = new AbortController();
  const a = batcher.process("a");
  const b = batcher.process("b", { signal: c.signal });
  c.abort("no");
  const rest = ["c", "d"].map((x) => batcher.process(x));
  await assert.rejects(b, (e) => e === "no");
  assert.equal(await a, "a");
  assert.equal(await rest[0], "c"); // [a, c]: three places taken, one empty
  const closing = batcher.close(); // sends [d] at once
  assert.equal(await rest[1], "d");
  await closing;
  assert.deepEqual(batches, [["a", "c"], ["d"]]);
});

Deno.test("Batcher.stats() stays accounted when callers abort after the send and results fail", async () => {
  const gate = deferred();
  const batcher = new Batcher(async (xs: number[]) => {
    await gate.promise;
    return xs.map((x) => x % 2 === 0 ? new Error(`${x}`) : x);
  }, { maxSize: 4 });
  const controllers = [0, 1, 2, 3].map(() => new AbortController());
  const all = [0, 1, 2, 3].map((x) =>
    batcher.process(x, { signal: controllers[x].signal })
  );
  await until(() => batcher.stats().running === 1, "the batch to start");
  controllers[0].abort("gone"); // an Error result dropped
  controllers[1].abort("gone"); // a value dropped
  let s = batcher.stats();
  assert.deepEqual([s.cancelled, s.inFlight], [2, 2]);
  assertAccounted(s);
  gate.resolve();
  const r = await Promise.allSettled(all);
  assert.deepEqual(r.map((x) => x.status), [
    "rejected",
    "rejected",
    "rejected",
    "fulfilled",
  ]);
  s = batcher.stats();
  assert.deepEqual([s.succeeded, s.failed, s.cancelled, s.inFlight], [
    1,
    1,
    2,
    0,
  ]);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher.process() when every caller of a running batch aborted, its ctx.signal aborts and nothing is retried", async () => {
  let signal: AbortSignal | undefined;
  let calls = 0;
  const batcher = new Batcher(async (_xs: number[], ctx): Promise<number[]> => {
    calls++;
    signal = ctx.signal;
    await whenAborted(ctx.signal);
    throw ctx.signal.reason;
  }, { maxSize: 2, retry: { attempts: 3, delayMs: 0 } });
  const c = new AbortController();
  const a = batcher.process(1, { signal: c.signal });
  const b = batcher.process(2, { signal: c.signal });
  await until(() => signal !== undefined, "the batch to start");
  c.abort("all gone");
  await assert.rejects(a, (e) => e === "all gone");
  await assert.rejects(b, (e) => e === "all gone");
  assert.equal(signal!.aborted, true);
  assert.equal(signal!.reason.name, "AbortError");
  await batcher.close();
  assert.equal(calls, 1);
});

Deno.test("Batcher.process() an already aborted signal rejects at once and queues nothing", async () => {
  let calls = 0;
  const batcher = new Batcher((xs: number[]) => {
    calls++;
    return xs;
  }, { maxSize: 1 });
  const signal = AbortSignal.abort(new Error("too late"));
  await assert.rejects(batcher.process(1, { signal }), { message: "too late" });
  await batcher.close();
  assert.equal(calls, 0);
  assert.equal(batcher.stats().calls, 0);
});

Deno.test("Batcher.process() removes its abort listener once settled", async () => {
  const counts = { add: 0, remove: 0 };
  const controller = new AbortController();
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    counts.add++;
    add(...args);
  }) as typeof add;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    counts.remove++;
    remove(...args);
  }) as typeof remove;
  const batcher = new Batcher(
    (xs: number[]) => xs.map((x) => x === 2 ? new Error("2") : x),
    { maxSize: 3 },
  );
  await Promise.allSettled(
    [1, 2, 3].map((x) => batcher.process(x, { signal })),
  );
  assert.deepEqual(counts, { add: 3, remove: 3 });
  await batcher.close();
});

Deno.test("Batcher.process() rejects a bad options argument with a TypeError", async () => {
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 1 });
  await assert.rejects(
    batcher.process(1, { signal: "nope" as unknown as AbortSignal }),
    {
      name: "TypeError",
      message: `'signal' must be an AbortSignal: current value is "nope"`,
    },
  );
  await assert.rejects(
    batcher.process(1, 5 as unknown as { signal?: AbortSignal }),
    TypeError,
  );
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Closing

Deno.test("Batcher.close() drains: a partial batch goes at once and close waits for running batches", async () => {
  const gate = deferred();
  const order: string[] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    order.push(`start ${xs}`);
    await gate.promise;
    order.push(`end ${xs}`);
    return xs;
  }, { maxSize: 10, maxWaitMs: 60_000 });
  const p = batcher.process(1);
  const closing = batcher.close().then(() => order.push("closed"));
  await until(() => order.length === 1, "the batch to start");
  assert.equal(batcher.closed, true);
  await sleep(10);
  assert.deepEqual(order, ["start 1"]); // close waits for the running batch
  gate.resolve();
  await closing;
  assert.equal(await p, 1);
  assert.deepEqual(order, ["start 1", "end 1", "closed"]);
});

Deno.test("Batcher.close() drains callers waiting for room too", async () => {
  const batches: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    batches.push([...xs]);
    await sleep(2);
    return xs;
  }, { maxSize: 2, maxQueueSize: 2, maxWaitMs: 60_000 });
  const all = rangeInclusive(0, 6).map((x) => batcher.process(x));
  await withTimeout(batcher.close(), 3000, "close");
  assert.deepEqual(await Promise.all(all), rangeInclusive(0, 6));
  assert.deepEqual(batches, [[0, 1], [2, 3], [4, 5], [6]]);
});

Deno.test("Batcher.process() after close() rejects with a clear TypeError", async () => {
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 1 });
  await batcher.close();
  await assert.rejects(batcher.process(1), {
    name: "TypeError",
    message: /called after close\(\)/,
  });
  // During a drain too.
  const b2 = new Batcher((xs: number[]) => xs, { maxSize: 5, maxWaitMs: 50 });
  const p = b2.process(1);
  const closing = b2.close();
  await assert.rejects(b2.process(2), TypeError);
  await closing;
  assert.equal(await p, 1);
});

Deno.test("Batcher.close() force rejects every pending caller at once and aborts running batches' ctx.signal", async () => {
  let signal: AbortSignal | undefined;
  let returned = false;
  const batcher = new Batcher(async (xs: number[], ctx) => {
    signal = ctx.signal;
    await whenAborted(ctx.signal);
    await sleep(20); // returns a little after the abort
    returned = true;
    return xs;
  }, { maxSize: 2, maxQueueSize: 2 });
  const running = [1, 2].map((x) => batcher.process(x));
  await until(() => signal !== undefined, "the batch to start");
  const queued = [3, 4].map((x) => batcher.process(x));
  const waiting = [5, 6].map((x) => batcher.process(x));
  const all = [...running, ...queued, ...waiting];
  const settled = Promise.allSettled(all);
  const closing = batcher.close({ force: true });
  // Every caller settles at once, before the running batch has returned.
  const r = await withTimeout(settled, 1000, "callers");
  assert.equal(returned, false);
  for (const s of r) {
    assert.equal(s.status, "rejected");
    assert.equal((s as PromiseRejectedResult).reason.name, "AbortError");
  }
  assert.equal(signal!.aborted, true);
  await closing; // settles once processBatch has returned
  assert.equal(returned, true);
  const s = batcher.stats();
  assert.equal(s.cancelled, 6);
  assertAccounted(s);
});

Deno.test("Batcher.process() a batch sent before it is full holds exactly its items, no empty slots", async () => {
  const seen: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    seen.push(xs);
    return xs.map((x) => x * 10);
  }, { maxSize: 100, maxWaitMs: 5 });
  assert.deepEqual(
    await Promise.all([1, 2, 3].map((x) => batcher.process(x))),
    [10, 20, 30],
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0].length, 3);
  assert.deepEqual(Object.keys(seen[0]), ["0", "1", "2"]);
  await batcher.close();
});

Deno.test("Batcher.close() force rejects the callers of a partly filled queued batch, and only them", async () => {
  const gate = deferred();
  const batcher = new Batcher(async (xs: number[]) => {
    await gate.promise;
    return xs;
  }, { maxSize: 50, concurrency: 1 });
  const running = batcher.process(0); // takes the one slot
  await microtasks();
  const queued = [1, 2, 3].map((x) => batcher.process(x)); // 3 of 50 slots
  const settled = Promise.allSettled([running, ...queued]);
  const closing = batcher.close({ force: true });
  const r = await withTimeout(settled, 1000, "callers");
  assert.deepEqual(r.map((s) => s.status), Array(4).fill("rejected"));
  gate.resolve();
  await closing;
  const s = batcher.stats();
  assert.equal(s.cancelled, 4);
  assertAccounted(s);
});

Deno.test("Batcher.close() force after a plain close() escalates", async () => {
  const gate = deferred();
  const batcher = new Batcher(async (xs: number[], ctx) => {
    await Promise.race([
      gate.promise,
      whenAborted(ctx.signal),
    ]);
    return xs;
  }, { maxSize: 1 });
  const a = batcher.process(1);
  const b = batcher.process(2);
  const draining = batcher.close();
  await tick();
  const forced = batcher.close({ force: true });
  await assert.rejects(a, { name: "AbortError" });
  await assert.rejects(b, { name: "AbortError" });
  await Promise.all([draining, forced]);
  gate.resolve();
});

Deno.test("Batcher.close() is idempotent and settles on an idle batcher", async () => {
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 1 });
  await batcher.close();
  await batcher.close();
  await batcher.close({ force: true });
  await assert.rejects(
    batcher.close(3 as unknown as { force?: boolean }),
    TypeError,
  );
});

Deno.test("Batcher.close() rejects a non-boolean force with a TypeError and does not close", async () => {
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 1 });
  for (
    const [force, shown] of [
      ["yes", `"yes"`],
      [1, "1"],
      [null, "null"],
      [{}, "an object"],
    ] as const
  ) {
    await assert.rejects(
      batcher.close({ force } as unknown as { force?: boolean }),
      {
        name: "TypeError",
        message: `'force' must be a boolean: current value is ${shown}`,
      },
    );
  }
  // The batcher is still open and works.
  assert.equal(batcher.closed, false);
  assert.equal(await batcher.process(5), 5);
  // A bad options argument does not close it either.
  await assert.rejects(
    batcher.close(null as unknown as { force?: boolean }),
    {
      name: "TypeError",
      message: "'options' must be an object: current value is null",
    },
  );
  assert.equal(batcher.closed, false);
  // force: undefined is the default (drain).
  const p = batcher.process(6);
  await batcher.close({ force: undefined });
  assert.equal(await p, 6);
  assert.equal(batcher.closed, true);
});

Deno.test("Batcher [Symbol.asyncDispose] drains at the end of an await using scope", async () => {
  const batches: number[][] = [];
  let p: Promise<number[]>;
  {
    await using batcher = new Batcher((xs: number[]) => {
      batches.push([...xs]);
      return xs;
    }, { maxSize: 10, maxWaitMs: 60_000 });
    p = Promise.all([1, 2].map((x) => batcher.process(x)));
  }
  assert.deepEqual(await p, [1, 2]);
  assert.deepEqual(batches, [[1, 2]]);
});

Deno.test("Batcher.process() every promise settles under random aborts, failures and a final force close", async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = prng(seed);
    const batcher = new Batcher(async (xs: number[], ctx) => {
      await sleep(random() * 3, ctx.signal);
      if (random() < 0.1) throw new Error("batch failed");
      return xs.map((x) => random() < 0.1 ? new Error(`item ${x}`) : x);
    }, {
      maxSize: 1 + Math.floor(random() * 8),
      maxWaitMs: random() * 4,
      concurrency: 1 + Math.floor(random() * 3),
      maxQueueSize: 5 + Math.floor(random() * 10),
      retry: { attempts: 2, delayMs: 1, random },
    });
    const all: Promise<number>[] = [];
    for (let i = 0; i < 150; i++) {
      const c = random() < 0.2 ? new AbortController() : undefined;
      const p = batcher.process(i, { signal: c?.signal });
      p.catch(() => {}); // settled below, possibly long after rejecting
      all.push(p);
      if (c !== undefined) {
        const after = random() * 5;
        if (after < 1) c.abort("abort");
        else setTimeout(() => c.abort("abort"), after);
      }
      if (random() < 0.2) await sleep(random() * 2);
    }
    if (seed % 2 === 0) await sleep(random() * 10);
    const closing = batcher.close({ force: seed % 2 === 0 });
    await withTimeout(Promise.allSettled(all), 5000, `seed ${seed} callers`);
    await withTimeout(closing, 5000, `seed ${seed} close`);
    const s = batcher.stats();
    assertAccounted(s);
    assert.equal(s.calls, 150);
    assert.deepEqual([s.pending, s.waiting, s.inFlight, s.running], [
      0,
      0,
      0,
      0,
    ]);
    await sleep(6); // let the stray abort timers fire
  }
});

// ---------------------------------------------------------------------------
// Timers

Deno.test("Batcher timers: at most one flush timer at a time, none while every slot is busy, none after close", async () => {
  using time = new FakeTime();
  const gate = deferred();
  const batcher = new Batcher(async (xs: number[]) => {
    if (xs[0] === 0) await gate.promise;
    return xs;
  }, { maxSize: 3, maxWaitMs: 1000 });
  const all = [batcher.process(0)];
  await microtasks();
  assert.equal(time.pending, 1); // one flush timer for the forming batch
  for (const x of rangeInclusive(1, 20)) all.push(batcher.process(x));
  await microtasks();
  // [0, 1, 2] was full and went; it blocks the only slot, so the later
  // batches wait for it, not for a timer.
  assert.equal(time.pending, 0);
  assert.equal(batcher.stats().pending, 18);
  gate.resolve();
  await Promise.all(all); // 21 items: 7 full batches
  assert.equal(time.pending, 0);
  const p = batcher.process(21);
  await microtasks();
  assert.equal(time.pending, 1);
  await batcher.close(); // sends [21] at once and clears the timer
  assert.equal(await p, 21);
  assert.equal(time.pending, 0);
  assert.equal(time.peakPending, 1);
  assert.equal(time.created, 2, `${time.created} timers made`);
});

Deno.test("Batcher timers: the flush timer is cleared when a forming batch fills up", async () => {
  using time = new FakeTime();
  const batcher = new Batcher((xs: number[]) => xs, {
    maxSize: 2,
    maxWaitMs: 60_000,
  });
  const a = batcher.process(1);
  await microtasks();
  assert.equal(time.pending, 1);
  const b = batcher.process(2);
  await Promise.all([a, b]);
  assert.equal(time.pending, 0);
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Stats

Deno.test("Batcher.stats() counts batches, items, mean batch size, retries and queue wait", async () => {
  let fail = true;
  const batcher = new Batcher((xs: number[]) => {
    if (fail) {
      fail = false;
      throw new Error("once");
    }
    return xs;
  }, { maxSize: 4, maxWaitMs: 30, retry: { attempts: 2, delayMs: 0 } });
  assert.deepEqual(batcher.stats(), {
    calls: 0,
    batchesSent: 0,
    itemsProcessed: 0,
    meanBatchSize: 0,
    retries: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    pending: 0,
    waiting: 0,
    inFlight: 0,
    running: 0,
    cacheHits: 0,
    deduped: 0,
    queueWait: { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 },
  });
  await Promise.all(rangeInclusive(1, 6).map((x) => batcher.process(x)));
  const s = batcher.stats();
  assert.equal(s.calls, 6);
  assert.equal(s.batchesSent, 2); // [1..4] at once, [5, 6] after 30 ms
  assert.equal(s.itemsProcessed, 6);
  assert.equal(s.meanBatchSize, 3);
  assert.equal(s.retries, 1);
  assert.equal(s.succeeded, 6);
  assert.equal(s.queueWait.count, 6);
  // [5, 6] waited for its window (lower bound with slack for early timers).
  assert(s.queueWait.max >= 25, `max ${s.queueWait.max}`);
  assert(s.queueWait.p95 >= 25, `p95 ${s.queueWait.p95}`);
  assert(s.queueWait.p50 <= s.queueWait.p95);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher.stats() samples the queue wait after the first 256 calls (one in 32)", async () => {
  const batcher = new Batcher((xs: number[]) => xs, {
    maxSize: 100,
    concurrency: Infinity,
  });
  await Promise.all(
    rangeInclusive(1, 256 + 320).map((x) => batcher.process(x)),
  );
  const s = batcher.stats();
  assert.equal(s.queueWait.count, 256 + 10);
  assert.equal(s.itemsProcessed, 576);
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Validation

Deno.test("Batcher() rejects bad options at the call site, naming the option and the value", () => {
  const fn = (xs: number[]) => xs;
  const cases: [unknown, ErrorConstructor, string][] = [
    [
      undefined,
      TypeError,
      "'options' must be an object with 'maxSize': current value is undefined",
    ],
    [null, TypeError, "'options' must be an object: current value is null"],
    [
      {},
      TypeError,
      "'maxSize' must be a positive integer: current value is undefined",
    ],
    [
      { maxSize: -1 },
      RangeError,
      "'maxSize' must be a positive integer: current value is -1",
    ],
    [
      { maxSize: 0 },
      RangeError,
      "'maxSize' must be a positive integer: current value is 0",
    ],
    [
      { maxSize: NaN },
      RangeError,
      "'maxSize' must be a positive integer: current value is NaN",
    ],
    [
      { maxSize: 1.5 },
      RangeError,
      "'maxSize' must be a positive integer: current value is 1.5",
    ],
    [
      { maxSize: Infinity },
      RangeError,
      "'maxSize' must be a positive integer: current value is Infinity",
    ],
    [
      { maxSize: "5" },
      TypeError,
      `'maxSize' must be a positive integer: current value is "5"`,
    ],
    [
      { maxSize: 5, maxWaitMs: -1 },
      RangeError,
      "'maxWaitMs' must be a number of ms >= 0 and <= 2147483647: current value is -1",
    ],
    [
      { maxSize: 5, maxWaitMs: NaN },
      RangeError,
      "'maxWaitMs' must be a number of ms >= 0 and <= 2147483647: current value is NaN",
    ],
    [
      { maxSize: 5, maxWaitMs: Infinity },
      RangeError,
      "'maxWaitMs' must be a number of ms >= 0 and <= 2147483647: current value is Infinity",
    ],
    [
      { maxSize: 5, concurrency: 0 },
      RangeError,
      "'concurrency' must be a positive integer or Infinity: current value is 0",
    ],
    [
      { maxSize: 5, concurrency: NaN },
      RangeError,
      "'concurrency' must be a positive integer or Infinity: current value is NaN",
    ],
    [
      { maxSize: 5, maxQueueSize: 0 },
      RangeError,
      "'maxQueueSize' must be a positive integer or Infinity: current value is 0",
    ],
    [
      { maxSize: 5, onFull: "drop" },
      TypeError,
      `'onFull' must be "wait" or "reject": current value is "drop"`,
    ],
    [
      { maxSize: 5, retry: { attempts: 0 } },
      RangeError,
      "'retry.attempts' must be a positive integer: current value is 0",
    ],
    [
      { maxSize: 5, retry: 3 },
      TypeError,
      "'retry' must be an object: current value is 3",
    ],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(
      () => new Batcher(fn, options as { maxSize: number }),
      (e) => {
        assert(e instanceof type, `${JSON.stringify(options)}: ${e}`);
        assert.equal((e as Error).message, message);
        return true;
      },
    );
  }
  assert.throws(
    () => new Batcher("fn" as unknown as typeof fn, { maxSize: 1 }),
    {
      name: "TypeError",
      message: `'processBatch' must be a function: current value is "fn"`,
    },
  );
});

// ---------------------------------------------------------------------------
// Types and the example

Deno.test("Batcher types: the result type is inferred from processBatch; items are checked", async () => {
  const batcher = new Batcher(
    (texts: string[]) => Promise.resolve(texts.map((t) => t.length)),
    { maxSize: 4 },
  );
  const n: number = await batcher.process("abc");
  assert.equal(n, 3);
  // @ts-expect-error: a number is not a string item
  await batcher.process(5).catch(() => {});
  const withErrors = new Batcher(
    (xs: number[]) => xs.map((x) => x > 0 ? `${x}` : new Error("neg")),
    { maxSize: 4 },
  );
  const s: string = await withErrors.process(1);
  assert.equal(s, "1");
  await Promise.all([batcher.close(), withErrors.close()]);
});

Deno.test("examples/batcher.ts embeds 40 texts in batches, refusing the empty one and dropping the aborted caller", async () => {
  const r = await example();
  assert.equal(r.vectors, 39);
  assert.deepEqual(r.refused, ["cannot embed an empty text", "caller left"]);
  assert.equal(r.stats.itemsProcessed, 40);
  assert(r.stats.batchesSent >= 3, `${r.stats.batchesSent} batches`);
  assert(r.stats.meanBatchSize > 1);
  assertAccounted(r.stats);
});
