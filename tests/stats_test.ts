// Flow.stats(): the accounting invariant, per-stage counters, latency
// figures and worker states. Counts and generous bounds are asserted, never
// tight durations.
import assert from "node:assert/strict";
import {
  batch,
  filter,
  flatten,
  type Flow,
  type FlowStats,
  type LatencyStats,
  map,
  pipeline,
} from "../mod.ts";
import {
  asyncSource,
  type Deferred,
  deferred,
  range,
  rejection,
  sleep,
  syncSource,
  ticks,
  until,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";

/** itemsIn === itemsOut + skipped + filtered + cancelled + inFlight. */
function assertAccounting(s: FlowStats, where: string): void {
  const sum = s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight;
  assert.ok(
    Math.abs(s.itemsIn - sum) < 1e-6,
    `${where}: itemsIn ${s.itemsIn} !== itemsOut ${s.itemsOut} + skipped ${s.skipped} + filtered ${s.filtered} + cancelled ${s.cancelled} + inFlight ${s.inFlight}`,
  );
  assert.ok(s.inFlight >= 0, `${where}: inFlight ${s.inFlight}`);
  assert.ok(s.failed >= s.skipped - 1e-6, `${where}: failed >= skipped`);
}

/** Checks the accounting at every progress event and every item event. */
function watchAccounting(flow: Flow<unknown>): { checks: number } {
  const seen = { checks: 0 };
  flow.addEventListener("progress", (e) => {
    assertAccounting(e.detail, `progress at ${e.detail.elapsedMs} ms`);
    seen.checks++;
  });
  for (
    const type of ["started", "completed", "retrying", "failed", "skipped"]
  ) {
    flow.addEventListener(type, () => {
      assertAccounting(flow.stats(), `in a "${type}" listener`);
      seen.checks++;
    });
  }
  return seen;
}

function assertLatencyShape(l: LatencyStats, where: string): void {
  for (const key of ["count", "avg", "p50", "p95", "max"] as const) {
    assert.equal(typeof l[key], "number", `${where}.${key}`);
    assert.ok(Number.isFinite(l[key]) && l[key] >= 0, `${where}.${key}`);
  }
  if (l.count > 0) {
    assert.ok(l.p50 <= l.p95 * 1.03 + 1e-9, `${where}: p50 <= p95`);
    assert.ok(l.p95 <= l.max * 1.03 + 1e-9, `${where}: p95 <= max`);
    assert.ok(l.avg <= l.max + 1e-9, `${where}: avg <= max`);
  }
}

// ---- accounting ------------------------------------------------------------------

for (const order of ["input", "completion"] as const) {
  Deno.test(`Flow.stats() accounting holds at every progress event and at the end of a mixed run (success, onError skip, filter, flatten, batch), order ${order}`, async () => {
    const N = 60;
    const skippedAt = (x: number) => x % 10 === 7;
    const dropped = (x: number) => x % 3 === 0;
    const emptied = (x: number) => x % 4 === 1;
    const flow = pipeline(
      map(async (x: number) => {
        await sleep(x % 3);
        if (skippedAt(x)) throw new Error(`bad ${x}`);
        return x;
      }, { name: "fetch", concurrency: 4, onError: "skip" }),
      filter((x: number) => !dropped(x), { name: "keep" }),
      map(
        async (x: number) => {
          await sleep(1);
          return emptied(x) ? [] : [x, x + 0.5, x + 0.25];
        },
        { name: "split", concurrency: 2 },
      ),
      flatten<number>({ name: "flat" }),
      batch<number>({ name: "group", maxSize: 4 }),
      map((xs: number[]) => xs, { name: "use" }),
    ).run(range(N), { order, progressIntervalMs: 2 });
    const before = flow.stats(); // nothing read until a consumer comes
    assert.equal(before.done, false);
    assert.equal(before.itemsIn, 0);
    const watched = watchAccounting(flow);
    const out: number[][] = [];
    for await (const b of flow) {
      assertAccounting(flow.stats(), "in the consumer loop");
      out.push(b);
      await sleep(0);
    }

    const afterSkip = range(N).filter((x) => !skippedAt(x));
    const afterFilter = afterSkip.filter((x) => !dropped(x));
    const kept = afterFilter.filter((x) => !emptied(x));
    const elements = kept.length * 3;
    const batches = Math.ceil(elements / 4);
    assert.equal(out.length, batches);
    assert.equal(out.flat().length, elements);
    assert.ok(watched.checks > 0);

    const s = flow.stats();
    assertAccounting(s, "at the end");
    assert.equal(s.done, true);
    assert.ok(s.elapsedMs >= 0);
    assert.equal(s.itemsIn, N);
    assert.equal(s.inFlight, 0);
    assert.equal(s.cancelled, 0);
    assert.equal(s.running, 0);
    assert.equal(s.failed, N - afterSkip.length);
    assert.equal(s.skipped, N - afterSkip.length);
    assert.equal(s.filtered, afterSkip.length - kept.length);
    assert.ok(Math.abs(s.itemsOut - kept.length) < 1e-6, `${s.itemsOut}`);
    assert.equal(s.results, batches, "a batch is one result");
    assert.equal(flow.failures.length, N - afterSkip.length);

    const [fetch, keep, split, flat, group, use] = s.stages;
    assert.deepEqual(
      s.stages.map((st) => [st.name, st.kind, st.concurrency]),
      [
        ["fetch", "map", 4],
        ["keep", "filter", 1],
        ["split", "map", 2],
        ["flat", "flatten", 0],
        ["group", "batch", 0],
        ["use", "map", 1],
      ],
    );
    assert.deepEqual(
      [fetch.completed, fetch.failed, fetch.skipped, fetch.retried],
      [afterSkip.length, N - afterSkip.length, N - afterSkip.length, 0],
    );
    assert.equal(keep.completed, afterSkip.length);
    assert.equal(split.completed, afterFilter.length);
    assert.equal(flat.completed, afterFilter.length);
    assert.equal(group.completed, batches);
    assert.equal(use.completed, batches);
    for (const st of s.stages) {
      assert.equal(st.queued, 0, st.name);
      assert.equal(st.inFlight, 0, st.name);
      assert.equal(st.busy, 0, st.name);
      assert.equal(st.backingOff, 0, st.name);
      assertLatencyShape(st.latency, `${st.name}.latency`);
      assertLatencyShape(st.queueWait, `${st.name}.queueWait`);
    }
    assertLatencyShape(s.latency, "latency");
  });
}

Deno.test("Flow.stats() accounting holds after an abort mid-run: cancelled > 0, inFlight 0", async () => {
  const flow = pipeline(
    map(async (x: number, ctx) => {
      if (x >= 20) await whenAborted(ctx.signal);
      else await sleep(1);
      if (x % 7 === 0) throw new Error("bad");
      return x;
    }, { concurrency: 5, onError: "skip" }),
    filter((x: number) => x % 2 === 0),
    batch<number>({ maxSize: 3 }),
  ).run(range(100), { progressIntervalMs: 2 });
  const watched = watchAccounting(flow);
  const out = rejection(flow.collect());
  await until(() => {
    const st = flow.stats().stages[0];
    return st.completed + st.failed === 20 && st.inFlight === 5;
  }, "items 0..19 done and 20..24 stuck");
  const mid = flow.stats();
  assertAccounting(mid, "mid-run");
  assert.ok(mid.inFlight > 0);
  await withTimeout(flow.abort(new Error("stop")), 5000, "the abort");
  assert.equal(((await out) as Error).message, "stop");
  const s = flow.stats();
  assertAccounting(s, "after the abort");
  assert.equal(s.done, true);
  assert.equal(s.inFlight, 0);
  assert.equal(s.running, 0);
  assert.ok(s.cancelled > 0, `cancelled ${s.cancelled}`);
  // Items 0..19 went through (or were skipped or filtered); a partial batch
  // and every item read from 20 on were cancelled.
  assert.ok(s.cancelled >= 5, `cancelled ${s.cancelled}`);
  assert.ok(s.itemsIn >= 25);
  assert.ok(watched.checks > 0);
  for (const st of s.stages) {
    assert.equal(st.inFlight, 0, st.name);
    assert.equal(st.busy, 0, st.name);
    assert.equal(st.backingOff, 0, st.name);
  }
  assert.equal(s.stages[0].queued, 0);
});

Deno.test("Flow.stats() after an abort no stage reports queued items: the cancelled forming batch included", async () => {
  const flow = pipeline(
    map(async (x: number, ctx) => {
      if (x >= 2) await whenAborted(ctx.signal);
      return x;
    }, { concurrency: 3 }),
    batch<number>({ maxSize: 5 }),
  ).run(range(10));
  const out = rejection(flow.collect());
  await until(() => flow.stats().stages[1].queued === 2, "a forming batch");
  await withTimeout(flow.abort(new Error("stop")), 5000, "the abort");
  await out;
  const s = flow.stats();
  assertAccounting(s, "after the abort");
  assert.equal(s.done, true);
  assert.ok(s.cancelled >= 5, `cancelled ${s.cancelled}`);
  assert.deepEqual(s.stages.map((st) => st.queued), [0, 0]);
});

Deno.test("Flow.stats() results counts values yielded (a batch is one) while itemsOut counts source items", async () => {
  const flow = pipeline(batch<number>({ maxSize: 3 })).run(range(10));
  const it = flow[Symbol.asyncIterator]();
  await it.next();
  let s = flow.stats();
  assert.equal(s.results, 1);
  assert.equal(s.itemsOut, 3);
  assertAccounting(s, "after one batch");
  while (!(await it.next()).done) { /* drain */ }
  s = flow.stats();
  assert.equal(s.results, 4);
  assert.equal(s.itemsOut, 10);
  assert.equal(s.stages[0].completed, 4);
  assertAccounting(s, "at the end");
});

Deno.test("Flow.stats() results and itemsOut count only what the consumer has taken", async () => {
  const flow = pipeline(
    map((x: number) => [x, x]),
    flatten<number>(),
  ).run(range(4));
  const it = flow[Symbol.asyncIterator]();
  await it.next();
  let s = flow.stats();
  assert.equal(s.results, 1);
  assert.ok(Math.abs(s.itemsOut - 0.5) < 1e-6, `half an item: ${s.itemsOut}`);
  assertAccounting(s, "after one element");
  for (let i = 0; i < 6; i++) await it.next();
  s = flow.stats();
  assert.equal(s.results, 7);
  assert.ok(Math.abs(s.itemsOut - 3.5) < 1e-6, `${s.itemsOut}`);
  // Leaving early: the run is done and the count stays at what was taken.
  await it.return!();
  s = flow.stats();
  assert.equal(s.done, true);
  assert.equal(s.results, 7);
  assert.ok(Math.abs(s.itemsOut - 3.5) < 1e-6, `${s.itemsOut}`);
});

// ---- calls in flight -------------------------------------------------------------

Deno.test("Flow.stats() running equals the stage calls in flight, all stages together", async () => {
  const gates = new Map<string, Deferred<void>>();
  const gate = (key: string) => {
    let d = gates.get(key);
    if (d === undefined) gates.set(key, d = deferred());
    return d;
  };
  let inFlight = 0;
  const call = (stage: string) => async (x: number) => {
    inFlight++;
    try {
      await gate(`${stage}${x}`).promise;
    } finally {
      inFlight--;
    }
    return x;
  };
  const flow = pipeline(
    map(call("a"), { name: "a", concurrency: 3 }),
    map(call("b"), { name: "b", concurrency: 2 }),
  ).run(range(8), { order: "completion" });
  const out = flow.collect();
  const check = async (a: number, b: number) => {
    await ticks();
    const s = flow.stats();
    assert.equal(s.running, inFlight);
    assert.equal(s.running, a + b);
    assert.equal(s.stages[0].inFlight, a);
    assert.equal(s.stages[1].inFlight, b);
    assert.equal(s.stages[0].busy, a);
    assert.equal(s.stages[1].busy, b);
  };
  await check(3, 0);
  gate("a0").resolve();
  await check(3, 1);
  gate("a1").resolve();
  gate("a2").resolve();
  await check(3, 2);
  assert.ok(flow.stats().stages[1].queued >= 1);
  for (const x of range(8)) {
    gate(`a${x}`).resolve();
    gate(`b${x}`).resolve();
  }
  assert.deepEqual((await out).sort((a, b) => a - b), range(8));
  assert.equal(flow.stats().running, 0);
  assert.equal(inFlight, 0);
});

// ---- per-stage counters ----------------------------------------------------------

Deno.test("Flow.stats() per stage: name, kind, concurrency, queued, inFlight, busy during a run; completed and throughput after it", async () => {
  const gate = deferred();
  // An async source: one item is read ahead into the first stage's queue (a
  // synchronous one is read only as workers free up; see the test below).
  const flow = pipeline(
    map(async (x: number) => {
      await gate.promise;
      return x;
    }, { name: "slow", concurrency: 2 }),
    filter((x: number) => x % 2 === 0, { name: "even", concurrency: 3 }),
  ).run(asyncSource(6).source);
  const out = flow.collect();
  await ticks();
  let s = flow.stats();
  const [slow, even] = s.stages;
  assert.equal(slow.name, "slow");
  assert.equal(slow.kind, "map");
  assert.equal(slow.concurrency, 2);
  assert.equal(slow.inFlight, 2);
  assert.equal(slow.busy, 2);
  assert.ok(slow.queued >= 1, `queued ${slow.queued}`);
  assert.equal(slow.queued, s.itemsIn - 2);
  assert.equal(slow.completed, 0);
  assert.equal(slow.throughput, 0);
  assert.equal(even.name, "even");
  assert.equal(even.kind, "filter");
  assert.equal(even.concurrency, 3);
  assert.equal(even.inFlight, 0);
  assert.equal(even.queued, 0);
  assertAccounting(s, "during the run");
  gate.resolve();
  assert.deepEqual(await out, [0, 2, 4]);
  s = flow.stats();
  for (const st of s.stages) {
    assert.equal(st.completed, 6, st.name);
    assert.equal(st.failed, 0, st.name);
    assert.equal(st.skipped, 0, st.name);
    assert.equal(st.retried, 0, st.name);
    assert.equal(st.queued, 0, st.name);
    assert.equal(st.inFlight, 0, st.name);
    assert.equal(st.busy, 0, st.name);
    assert.ok(st.throughput > 0, `${st.name} throughput ${st.throughput}`);
    // Completed calls per second since the start: bounded by completed / elapsed.
    assert.ok(
      st.throughput <= 6 / (Math.max(s.elapsedMs, 1) / 1000) + 1e-6,
      `${st.name} throughput ${st.throughput}`,
    );
    assert.ok(st.latency.count > 0, `${st.name} latency.count`);
    assert.ok(st.queueWait.count > 0, `${st.name} queueWait.count`);
  }
  assert.equal(s.filtered, 3);
});

Deno.test("Flow.stats() per stage: a synchronous source is read only as first-stage workers free up, so nothing waits in its queue", async () => {
  const gates = [deferred(), deferred(), deferred()];
  const { source, probe } = syncSource(); // endless
  const flow = pipeline(
    map(async (x: number) => {
      await gates[Math.min(x, 2)].promise;
      return x;
    }, { concurrency: 2 }),
  ).run(source);
  const it = flow[Symbol.asyncIterator]();
  await ticks();
  const during = flow.stats();
  assert.equal(during.done, false);
  assert.equal(during.itemsIn, probe.pulled, "itemsIn counts the items read");
  assert.equal(during.inFlight, during.itemsIn, "every item read is in flight");
  assert.equal(during.running, 2);
  assert.equal(during.itemsOut, 0);
  let st = during.stages[0];
  assert.equal(probe.pulled, 2, "one item per worker, none read ahead");
  assert.equal(st.busy, 2);
  assert.equal(st.queued, 0);
  // A worker that finishes reads its next item itself.
  gates[0].resolve();
  assert.deepEqual(await it.next(), { done: false, value: 0 });
  await ticks();
  st = flow.stats().stages[0];
  assert.equal(probe.pulled, 3);
  assert.equal(st.busy, 2);
  assert.equal(st.queued, 0);
  gates[1].resolve();
  assert.deepEqual(await it.next(), { done: false, value: 1 });
  gates[2].resolve(); // the calls on items 2 and 3 return after the stop
  await it.return!(); // waits until the run has stopped
  assert.equal(flow.stats().done, true);
  assert.equal(probe.closed, true);
  assert.equal(flow.stats().cancelled, 2); // items 2 and 3, at their gate
});

Deno.test("Flow.stats() per stage: failed, skipped and retried count final failures, skips and attempts after the first", async () => {
  const flow = pipeline(map((x: number, ctx) => {
    if (x === 0) throw new Error("always");
    if (x === 1 && ctx.attempt < 3) throw new Error("twice");
    return x;
  }, {
    concurrency: 2,
    retry: { attempts: 3, delayMs: 1, jitter: false },
    onError: "skip",
  })).run(range(4));
  assert.deepEqual(await flow.collect(), [1, 2, 3]);
  const s = flow.stats();
  const st = s.stages[0];
  assert.equal(st.completed, 3);
  assert.equal(st.failed, 1);
  assert.equal(st.skipped, 1);
  assert.equal(st.retried, 4); // item 0: 2 retries, item 1: 2 retries
  assert.equal(st.backingOff, 0);
  assert.equal(s.failed, 1);
  assert.equal(s.skipped, 1);
  assertAccounting(s, "at the end");
});

Deno.test("Flow.stats() backingOff: an item in a long retry backoff counts 1 and holds no slot (busy 0)", async () => {
  let calls = 0;
  const flow = pipeline(map((x: number) => {
    calls++;
    throw new Error(`fail ${x}`);
  }, { retry: { attempts: 2, delayMs: 60_000, jitter: false } })).run([7]);
  const out = rejection(flow.collect());
  await until(() => flow.stats().stages[0].backingOff === 1, "a backoff");
  const s = flow.stats();
  const st = s.stages[0];
  assert.equal(st.backingOff, 1);
  assert.equal(st.busy, 0);
  assert.equal(st.inFlight, 0);
  assert.equal(st.queued, 0);
  assert.equal(st.retried, 1);
  assert.equal(s.running, 0);
  assert.equal(s.inFlight, 1);
  assert.ok(st.workers.every((w) => w.state === "idle"));
  assertAccounting(s, "during the backoff");
  assert.equal(calls, 1);
  // The backoff timer is cleared by the abort (the sanitizer checks it).
  await withTimeout(flow.abort(new Error("stop")), 1000, "the abort");
  assert.equal(((await out) as Error).message, "stop");
  assert.equal(flow.stats().stages[0].backingOff, 0);
  assert.equal(calls, 1);
});

Deno.test("Flow.stats() backingOff: while an item backs off, its free slot takes the next item (busy 1, backingOff 1)", async () => {
  const started: number[] = [];
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    started.push(x);
    if (x === 0) throw new Error("fail 0");
    await gate.promise;
    return x;
  }, { retry: { attempts: 2, delayMs: 60_000, jitter: false } })).run([0, 1]);
  const out = rejection(flow.collect());
  try {
    await until(() => flow.stats().stages[0].backingOff === 1, "a backoff");
    await sleep(20);
    const st = flow.stats().stages[0];
    assert.deepEqual(started, [0, 1], "item 1 runs during item 0's backoff");
    assert.equal(st.backingOff, 1);
    assert.equal(st.busy, 1);
    assert.equal(st.inFlight, 1);
    assert.equal(st.queued, 0);
  } finally {
    gate.resolve();
    await withTimeout(flow.abort(new Error("stop")), 1000, "the abort");
    await out;
  }
});

// ---- latency -----------------------------------------------------------------------

Deno.test("Flow.stats() latency of calls that sleep ~20 ms: every slow call is timed, figures in a plausible range", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(20);
    return x;
  }, { concurrency: 4 })).run(range(40));
  assert.deepEqual(await flow.collect(), range(40));
  const l = flow.stats().stages[0].latency;
  assertLatencyShape(l, "latency");
  assert.ok(l.count >= 32 && l.count <= 40, `latency.count ${l.count}`);
  for (const key of ["avg", "p50", "p95", "max"] as const) {
    assert.ok(l[key] >= 15 && l[key] <= 2000, `${key} ${l[key]}`);
  }
  assert.ok(l.p50 <= 200, `p50 ${l.p50}`);
});

Deno.test("Flow.stats() latency: slow calls behind a fast stage are all timed too (count close to the number of calls)", async () => {
  const flow = pipeline(
    map((x: number) => x),
    map(async (x: number) => {
      await sleep(20);
      return x;
    }, { concurrency: 4 }),
  ).run(range(40));
  assert.deepEqual(await flow.collect(), range(40));
  const l = flow.stats().stages[1].latency;
  assertLatencyShape(l, "latency");
  assert.ok(l.count >= 32 && l.count <= 40, `latency.count ${l.count}`);
  assert.ok(l.p50 >= 15 && l.p50 <= 200, `p50 ${l.p50}`);
});

Deno.test("Flow.stats() latency: fast calls after batch → flatten are sampled like source items, not every element of a timed batch", async () => {
  const N = 12_800;
  const flow = pipeline(
    batch<number>({ maxSize: 32 }),
    flatten<number>(),
    map((x: number) => x, { concurrency: 4 }),
  ).run(range(N));
  assert.equal((await flow.collect()).length, N);
  const l = flow.stats().stages[2].latency;
  assert.ok(l.count > 0, "some calls are timed");
  // One in 1,024 and the first 16 is about 28; timing every element of each
  // timed batch would be over 400. Generous for
  // spells in which a loaded machine makes calls look slow (all are timed).
  assert.ok(l.count < N / 10, `latency.count ${l.count}`);
});

Deno.test("Flow.stats() latency: an item whose token is reused from an earlier result is timed only if sampled, from its own reading", async () => {
  // A result's token carries a later source item (no allocation per item);
  // a timed one must not pass its times on to the item that reuses it.
  const N = 12_800;
  for (const consume of ["collect", "for await"]) {
    const t0 = performance.now();
    const flow = pipeline(map((x: number) => x, { concurrency: 4 })).run(
      range(N),
    );
    let n = 0;
    if (consume === "collect") n = (await flow.collect()).length;
    else for await (const _ of flow) n++;
    const wall = performance.now() - t0;
    assert.equal(n, N);
    const l = flow.stats().latency;
    const calls = flow.stats().stages[0].latency;
    // One in 1,024 and the first 16 is 28; passing times on would time
    // almost every item. Generous for a loaded machine (see above).
    assert.ok(
      calls.count > 0 && calls.count < N / 10,
      `${consume}: ${calls.count}`,
    );
    assert.ok(l.count > 0 && l.count < N / 10, `${consume}: ${l.count}`);
    // Stale times would date an item from the reading of an earlier one.
    assert.ok(l.max <= wall * 1.05, `${consume}: max ${l.max} > wall ${wall}`);
  }
});

Deno.test("Flow.stats() queueWait: items waiting behind concurrency 1 report a wait > 0", async () => {
  // From an async source, the next item waits in the queue for the worker.
  const flow = pipeline(map(async (x: number) => {
    await sleep(20);
    return x;
  })).run(asyncSource(6).source);
  await flow.collect();
  const q = flow.stats().stages[0].queueWait;
  assertLatencyShape(q, "queueWait");
  assert.ok(q.count > 0, `queueWait.count ${q.count}`);
  assert.ok(q.max >= 10, `queueWait.max ${q.max}`);
  assert.ok(q.avg > 0, `queueWait.avg ${q.avg}`);
  assert.ok(q.max <= 5000, `queueWait.max ${q.max}`);
  // Without waiting (concurrency >= items), the waits are ~0.
  const free = pipeline(map(async (x: number) => {
    await sleep(20);
    return x;
  }, { concurrency: 6 })).run(range(6));
  await free.collect();
  const f = free.stats().stages[0].queueWait;
  assert.ok(f.count > 0);
  assert.ok(f.max < q.max, `no-wait max ${f.max} < waiting max ${q.max}`);
});

Deno.test("Flow.stats() end-to-end latency: count > 0 and max >= the slowest item's call", async () => {
  const durations: number[] = [];
  const flow = pipeline(map(async (x: number) => {
    const t0 = performance.now();
    await sleep(x === 3 ? 80 : 5);
    durations.push(performance.now() - t0);
    return x;
  }, { concurrency: 3 })).run(range(8));
  assert.deepEqual(await flow.collect(), range(8));
  const l = flow.stats().latency;
  assertLatencyShape(l, "latency");
  assert.ok(l.count > 0);
  assert.ok(l.count <= 8);
  const slowest = Math.max(...durations);
  // The histogram is within ~2 %: allow that much below.
  assert.ok(l.max >= slowest * 0.97, `max ${l.max} >= slowest ${slowest}`);
  assert.ok(l.max <= 5000, `max ${l.max}`);
});

// ---- workers -------------------------------------------------------------------------

Deno.test("Flow.stats() workers: with concurrency 3 and gated calls, 3 busy workers on distinct items; all idle after the run", async () => {
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    await gate.promise;
    return x;
  }, { concurrency: 3 })).run(range(5), { id: (x) => `id${x}` });
  const out = flow.collect();
  await until(() => flow.stats().running === 3, "3 calls in flight");
  const workers = flow.stats().stages[0].workers;
  assert.equal(workers.length, 3);
  assert.deepEqual(workers.map((w) => w.workerId).sort(), [0, 1, 2]);
  const now = Date.now();
  for (const w of workers) {
    assert.equal(w.state, "busy");
    assert.equal(w.itemId, `id${w.index}`);
    assert.equal(typeof w.since, "number");
    assert.ok(
      Math.abs(w.since! - now) < 2000,
      `since ${w.since} near Date.now() ${now}`,
    );
    assert.ok(w.since! <= now + 5);
  }
  assert.equal(new Set(workers.map((w) => w.itemId)).size, 3);
  assert.deepEqual(workers.map((w) => w.index).sort(), [0, 1, 2]);
  gate.resolve();
  assert.deepEqual(await out, range(5));
  const after = flow.stats().stages[0].workers;
  assert.equal(after.length, 3);
  for (const w of after) {
    assert.equal(w.state, "idle");
    assert.equal(w.itemId, undefined);
    assert.equal(w.index, undefined);
  }
});

Deno.test("Flow.stats() workers: once calls are slow, every busy worker reports since, also on items past the sampled ones", async () => {
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    if (x >= 50) await gate.promise;
    else await sleep(1); // slow calls (> 0.1 ms): from then on all are timed
    return x;
  }, { concurrency: 3 })).run(range(53));
  const out = flow.collect();
  await until(
    () =>
      flow.stats().stages[0].workers.filter((w) => w.state === "busy")
          .length === 3 &&
      flow.stats().stages[0].completed === 50,
    "items 50..52 in flight",
  );
  const now = Date.now();
  try {
    for (const w of flow.stats().stages[0].workers) {
      assert.equal(w.state, "busy");
      assert.ok(w.index! >= 50);
      assert.equal(typeof w.since, "number", `worker on item ${w.index}`);
      assert.ok(Math.abs(w.since! - now) < 2000, `since ${w.since}`);
    }
  } finally {
    gate.resolve();
    await out;
  }
});

Deno.test("Flow.stats() latency: calls that turn slow mid-run are all timed from the first sampled slow call on", async () => {
  // Items 0..2039 are fast (sampled: the first 16, 1024); 2040..2239 sleep,
  // and 2048 is the first sampled slow one. Waiting for more slow samples
  // before timing every call would time almost none of these 200.
  const flow = pipeline(map(async (x: number) => {
    if (x >= 2040) await sleep(1);
    return x;
  }, { concurrency: 16 })).run(range(2240));
  assert.equal((await flow.collect()).length, 2240);
  const l = flow.stats().stages[0].latency;
  // 16 calls may have started before item 2048 ended; a loaded machine only
  // switches earlier (fast calls looking slow).
  assert.ok(l.count >= 150, `latency.count ${l.count}`);
});

// ---- memory ------------------------------------------------------------------------

Deno.test("Flow.stats() of a 200,000-item run: counts are exact, latency figures sane and the snapshot stays small", async () => {
  const N = 200_000;
  const flow = pipeline(
    map((x: number) => x + 1, { concurrency: 4 }),
    filter((x: number) => x % 2 === 0),
  ).run(range(N), { progressIntervalMs: 20 });
  let progress = 0;
  flow.addEventListener("progress", (e) => {
    progress++;
    assertAccounting(e.detail, "progress");
  });
  let n = 0;
  for await (const _ of flow) n++;
  assert.equal(n, N / 2);
  const s = flow.stats();
  assert.equal(s.itemsIn, N);
  assert.equal(s.itemsOut, N / 2);
  assert.equal(s.filtered, N / 2);
  assert.equal(s.results, N / 2);
  assert.equal(s.inFlight, 0);
  assert.ok(progress >= 1);
  for (const st of s.stages) {
    assert.equal(st.completed, N);
    assertLatencyShape(st.latency, `${st.name}.latency`);
    assertLatencyShape(st.queueWait, `${st.name}.queueWait`);
    assert.ok(st.latency.count > 0 && st.latency.count <= N);
    assert.ok(st.latency.max < 10_000, `${st.name} max ${st.latency.max}`);
  }
  assertLatencyShape(s.latency, "latency");
  assert.ok(s.latency.count > 0 && s.latency.count <= N / 2);
  // A snapshot is a handful of numbers, whatever the run's length.
  assert.ok(JSON.stringify(s).length < 5000, `${JSON.stringify(s).length}`);
});

Deno.test("Flow.stats() balances exactly (===) with thirds of an item: a flattened item's shares add up", async () => {
  const flow = pipeline(
    map((x: number) => [x, x + 1, x + 2]),
    flatten<number>(),
    filter((x: number) => x !== 2),
    map((x: number) => {
      if (x === 1) throw new Error("skip me");
      return x;
    }, { onError: "skip" }),
  ).run([0]);
  assert.deepEqual(await flow.collect(), [0]);
  const s = flow.stats();
  assert.equal(s.itemsIn, 1);
  assert.equal(
    s.itemsIn,
    s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
  );
  assert(s.itemsOut > 0.3 && s.itemsOut < 0.34, String(s.itemsOut));
  assert.equal(s.itemsOut + s.skipped + s.filtered, 1);
});

Deno.test("Flow.stats() after batch -> flatten: each element weighs what its batch member weighed, not an equal share", async () => {
  const flow = pipeline(
    map((x: number) => x === 0 ? ["0a", "0b", "0c"] : [String(x)]),
    flatten<string>(),
    batch<string>({ maxSize: 4 }),
    flatten<string>(),
    filter((s: string) => s !== "1"),
  ).run([0, 1]);
  assert.deepEqual(await flow.collect(), ["0a", "0b", "0c"]);
  const s = flow.stats();
  assert.equal(s.filtered, 1); // item 1, whole (an equal split gave it 0.5)
  assert.equal(s.itemsOut, 1); // item 0's three thirds
});
