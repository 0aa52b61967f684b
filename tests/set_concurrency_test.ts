// flow.setConcurrency(stage, n) (issue 19): raising starts waiting items at
// once, lowering interrupts no running call, the read-ahead budget follows,
// a "concurrency" event fires, and bad arguments are errors naming them.
import assert from "node:assert/strict";
import {
  batch,
  type ConcurrencyEventDetail,
  filter,
  map,
  pipeline,
  type TaskContext,
} from "../mod.ts";
import {
  asyncSource,
  Gates,
  range,
  sleep,
  syncSource,
  ticks,
  until,
  whenAborted,
} from "./_helpers.ts";

/** A gated stage function that also records running calls and their signals. */
function gatedCalls() {
  const gates = new Gates<number>();
  const state = {
    running: 0,
    peak: 0,
    signals: new Map<number, AbortSignal>(),
    workerIds: new Set<number>(),
    duplicateWorkerId: false,
  };
  const fn = async (x: number, ctx: TaskContext) => {
    if (state.workerIds.has(ctx.workerId)) state.duplicateWorkerId = true;
    state.workerIds.add(ctx.workerId);
    state.running++;
    state.peak = Math.max(state.peak, state.running);
    state.signals.set(x, ctx.signal);
    try {
      await Promise.race([gates.wait(x), whenAborted(ctx.signal)]);
      return x;
    } finally {
      state.running--;
      state.workerIds.delete(ctx.workerId);
    }
  };
  return { gates, state, fn };
}

Deno.test("setConcurrency: raising starts new calls in the same tick (a first stage whose workers read a synchronous source)", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m", concurrency: 1 }))
    .run(range(12));
  const out = flow.collect();
  await until(() => gates.started.length === 1, "the first call");
  await ticks(3);
  assert.equal(gates.started.length, 1);
  flow.setConcurrency("m", 4);
  // No await in between: three more items were read and started.
  assert.equal(gates.started.length, 4);
  assert.equal(state.running, 4);
  assert.equal(flow.stats().stages[0].busy, 4);
  for (const x of range(12)) gates.open(x);
  assert.deepEqual(await out, range(12));
  assert.equal(state.peak, 4);
});

Deno.test("setConcurrency: raising starts the waiting item in the same tick, then the stage runs 4 (an async generator source)", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m", concurrency: 1 }))
    .run(asyncSource(12).source);
  const out = flow.collect();
  await until(() => gates.started.length === 1, "the first call");
  // Item 1 is read and waits for the slot.
  await until(() => flow.stats().stages[0].queued === 1, "a waiting item");
  flow.setConcurrency("m", 4);
  assert.equal(gates.started.length, 2); // no await in between
  assert.equal(flow.stats().stages[0].queued, 0);
  // The source answers asynchronously: the next two start as they are read.
  await until(() => gates.started.length === 4, "four calls");
  await ticks(3);
  assert.equal(state.running, 4);
  assert.equal(flow.stats().stages[0].concurrency, 4);
  for (const x of range(12)) gates.open(x);
  assert.deepEqual(await out, range(12));
  assert.equal(state.peak, 4);
});

Deno.test("setConcurrency: raising a stage whose waiting items are in its queue starts all of them synchronously", async () => {
  const { gates, state, fn } = gatedCalls();
  // A first stage that passes items on at once: the second stage's queue
  // fills up.
  const flow = pipeline(
    map((x: number) => x, { name: "a", concurrency: 8 }),
    map(fn, { name: "m", concurrency: 1 }),
  ).run(range(6));
  const out = flow.collect();
  await until(() => flow.stats().stages[1].queued === 5, "five waiting");
  assert.equal(state.running, 1);
  flow.setConcurrency("m", 4);
  assert.equal(state.running, 4); // before any await
  assert.equal(flow.stats().stages[1].queued, 2);
  for (const x of range(6)) gates.open(x);
  assert.deepEqual(await out, range(6));
});

Deno.test("setConcurrency: lowering interrupts no running call; no call starts until fewer than n run; then at most n run", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m", concurrency: 4 }))
    .run(range(12));
  const out = flow.collect();
  await until(() => gates.started.length === 4, "four calls");
  flow.setConcurrency("m", 2);
  await ticks(3);
  assert.equal(state.running, 4, "running calls go on");
  for (const s of state.signals.values()) assert.equal(s.aborted, false);
  gates.open(0);
  await until(() => state.running === 3, "one call ended");
  await ticks(3);
  assert.equal(gates.started.length, 4, "no call started at 3 running");
  gates.open(1);
  await until(() => state.running === 2, "two calls ended");
  await ticks(3);
  assert.equal(gates.started.length, 4, "no call started at 2 running");
  state.peak = state.running;
  gates.open(2);
  await until(() => gates.started.length === 5, "a new call below 2");
  // From now on, at most 2 at once.
  for (let x = 3; x < 12; x++) {
    await until(() => gates.started.includes(x), `item ${x}'s call`);
    await ticks(2);
    assert.ok(state.running <= 2, `${state.running} running`);
    gates.open(x);
  }
  assert.deepEqual(await out, range(12));
  assert.equal(state.peak, 2);
  for (const s of state.signals.values()) assert.equal(s.aborted, false);
});

Deno.test("setConcurrency: lowering a stage with retries (slow path) also waits for running calls and then runs at most n", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(
    map(fn, { name: "m", concurrency: 3, retry: { attempts: 2, delayMs: 1 } }),
  ).run(range(8));
  const out = flow.collect();
  await until(() => gates.started.length === 3, "three calls");
  flow.setConcurrency("m", 1);
  gates.open(0);
  gates.open(1);
  await until(() => state.running === 1, "two ended");
  await ticks(3);
  assert.equal(gates.started.length, 3);
  state.peak = 1;
  for (let x = 2; x < 8; x++) {
    await until(() => gates.started.includes(x), `item ${x}'s call`);
    gates.open(x);
  }
  assert.deepEqual(await out, range(8));
  assert.equal(state.peak, 1);
});

Deno.test("setConcurrency: the read-ahead budget follows (bufferSize 0, slow consumer: items read - taken ≤ the stage's concurrency)", async () => {
  const { source, probe } = syncSource();
  const flow = pipeline(map((x: number) => x, { name: "m", concurrency: 8 }))
    .run(source, { bufferSize: 0 });
  const it = flow[Symbol.asyncIterator]();
  let taken = 0;
  const take = async () => {
    const r = await it.next();
    assert.equal(r.value, taken);
    taken++;
    await ticks(2);
  };
  for (let i = 0; i < 5; i++) {
    await take();
    assert.ok(probe.pulled - taken <= 8, `${probe.pulled - taken} held`);
  }
  assert.equal(probe.pulled - taken, 8, "the bound is reached");
  flow.setConcurrency("m", 2);
  for (let i = 0; i < 8; i++) await take(); // what was held drains
  for (let i = 0; i < 10; i++) {
    await take();
    assert.ok(probe.pulled - taken <= 2, `${probe.pulled - taken} held`);
  }
  flow.setConcurrency("m", 16);
  await ticks(3);
  for (let i = 0; i < 3; i++) await take();
  assert.equal(probe.pulled - taken, 16, "the raised bound is used");
  await it.return!();
  assert.equal(probe.closed, true);
});

Deno.test("setConcurrency: fires a concurrency event { stage, from, to, reason: 'set' } and stats() shows the new value; the same value fires none", async () => {
  const { gates, fn } = gatedCalls();
  const flow = pipeline(
    map((x: number) => x, { name: "first" }),
    filter((x: number) => x >= 0, { name: "keep", concurrency: 2 }),
    map(fn, { name: "m", concurrency: 2 }),
  ).run(range(4));
  const events: ConcurrencyEventDetail[] = [];
  flow.addEventListener("concurrency", (e) => events.push(e.detail));
  const out = flow.collect();
  await until(() => gates.started.length === 2, "two calls");
  flow.setConcurrency("m", 5);
  flow.setConcurrency("m", 5);
  flow.setConcurrency("keep", 1);
  assert.deepEqual(events.map(({ timestamp: _, ...rest }) => rest), [
    { stage: "m", from: 2, to: 5, reason: "set" },
    { stage: "keep", from: 2, to: 1, reason: "set" },
  ]);
  assert.equal(typeof events[0].timestamp, "number");
  const stages = flow.stats().stages;
  assert.equal(stages[2].concurrency, 5);
  assert.equal(stages[1].concurrency, 1);
  assert.equal(stages[0].concurrency, 1);
  for (const x of range(4)) gates.open(x);
  assert.deepEqual(await out, range(4));
  assert.equal(flow.stats().stages[2].concurrency, 5);
});

Deno.test("setConcurrency: Infinity is allowed", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m" })).run(range(5));
  const out = flow.collect();
  await until(() => gates.started.length === 1, "a call");
  flow.setConcurrency("m", Infinity);
  await until(() => state.running === 5, "all five");
  assert.equal(flow.stats().stages[0].concurrency, Infinity);
  for (const x of range(5)) gates.open(x);
  assert.deepEqual(await out, range(5));
});

Deno.test("setConcurrency: an unknown stage is a RangeError listing the map and filter stages; a batch stage is one too", async () => {
  const flow = pipeline(
    map((x: number) => x, { name: "fetch" }),
    batch<number>({ maxSize: 2, name: "group" }),
    filter((xs: number[]) => xs.length > 0),
  ).run(range(3));
  assert.throws(
    () => flow.setConcurrency("nope", 2),
    (e: unknown) =>
      e instanceof RangeError && e.message.includes('"fetch"') &&
      e.message.includes('"filter#3"') && e.message.includes("nope") &&
      !e.message.includes('"group",'),
  );
  assert.throws(
    () => flow.setConcurrency("group", 2),
    (e: unknown) =>
      e instanceof RangeError && e.message.includes("group") &&
      e.message.includes("batch"),
  );
  assert.deepEqual(await flow.collect(), [[0, 1], [2]]);
});

Deno.test("setConcurrency: n = 0, 1.5, -1, NaN are RangeErrors and '3' a TypeError, naming 'concurrency'; nothing changes", async () => {
  const flow = pipeline(map((x: number) => x, { name: "m", concurrency: 3 }))
    .run(range(3));
  for (const n of [0, 1.5, -1, NaN]) {
    assert.throws(
      () => flow.setConcurrency("m", n),
      (e: unknown) =>
        e instanceof RangeError && /'concurrency'/.test(e.message),
      String(n),
    );
  }
  assert.throws(
    () => flow.setConcurrency("m", "3" as unknown as number),
    (e: unknown) => e instanceof TypeError && /'concurrency'/.test(e.message),
  );
  assert.equal(flow.stats().stages[0].concurrency, 3);
  assert.deepEqual(await flow.collect(), range(3));
});

Deno.test("setConcurrency: an adaptive stage is a TypeError", async () => {
  const flow = pipeline(
    map((x: number) => x, {
      name: "auto",
      concurrency: { adaptive: { min: 1, max: 4 } },
    }),
  ).run(range(3));
  assert.throws(
    () => flow.setConcurrency("auto", 2),
    (e: unknown) => e instanceof TypeError && e.message.includes("auto"),
  );
  assert.deepEqual(await flow.collect(), range(3));
});

Deno.test("setConcurrency: before the run starts it applies to the whole run; after it ended it does not throw", async () => {
  const { gates, state, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m", concurrency: 1 }))
    .run(range(6));
  flow.setConcurrency("m", 3); // synchronously, before the run starts
  assert.equal(flow.stats().stages[0].concurrency, 3);
  const out = flow.collect();
  await until(() => state.running === 3, "three calls");
  for (const x of range(6)) gates.open(x);
  assert.deepEqual(await out, range(6));
  assert.equal(state.peak, 3);
  flow.setConcurrency("m", 2);
  assert.equal(flow.stats().stages[0].concurrency, 2);
  await ticks(2);
});

Deno.test("setConcurrency: after an aborted run it does not throw and starts nothing", async () => {
  const { gates, fn } = gatedCalls();
  const flow = pipeline(map(fn, { name: "m", concurrency: 1 }))
    .run(range(6));
  const out = flow.collect();
  await until(() => gates.started.length === 1, "a call");
  flow.abort(new Error("stop"));
  await assert.rejects(out, /stop/);
  flow.setConcurrency("m", 4);
  await ticks(2);
  assert.equal(gates.started.length, 1);
});

Deno.test("setConcurrency: ctx.workerId values of concurrently running calls stay distinct through raises and lowerings", async () => {
  const inUse = new Set<number>();
  const clashes: number[] = [];
  let maxId = 0;
  // Raise and lower while calls of different lengths are running.
  const changes = new Map([[3, 5], [10, 1], [14, 6], [25, 2], [31, 8]]);
  let flowRef: { setConcurrency(stage: string, n: number): void } | null = null;
  const flow = pipeline(
    map(async (x: number, ctx: TaskContext) => {
      if (inUse.has(ctx.workerId)) clashes.push(ctx.workerId);
      inUse.add(ctx.workerId);
      maxId = Math.max(maxId, ctx.workerId);
      const n = changes.get(x);
      if (n !== undefined) flowRef!.setConcurrency("m", n);
      await sleep((x * 7) % 4);
      inUse.delete(ctx.workerId);
      return x;
    }, { name: "m", concurrency: 2 }),
  ).run(range(40));
  flowRef = flow;
  assert.deepEqual(await flow.collect(), range(40));
  assert.deepEqual(clashes, []);
  assert.ok(maxId >= 4, "the raises were used");
});
