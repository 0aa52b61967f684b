// The events of a run: "started", "completed", "retrying", "failed",
// "skipped" (per item and stage) and "progress" (the run's counters). Counts,
// orders and generous bounds are asserted, never tight durations.
import assert from "node:assert/strict";
import {
  type Flow,
  type FlowStats,
  type ItemEventDetail,
  map,
  pipeline,
  type TaskContext,
} from "../mod.ts";
import {
  deferred,
  range,
  rejection,
  sleep,
  ticks,
  until,
  withTimeout,
} from "./_helpers.ts";

const ITEM_EVENTS = [
  "started",
  "completed",
  "retrying",
  "failed",
  "skipped",
] as const;
type ItemEventType = typeof ITEM_EVENTS[number];

interface Recorded {
  type: ItemEventType;
  detail: ItemEventDetail;
  event: Event;
}

/** Records every item event of `flow`, in dispatch order. */
function record(flow: Flow<unknown>): Recorded[] {
  const events: Recorded[] = [];
  for (const type of ITEM_EVENTS) {
    flow.addEventListener(type, (e) => {
      events.push({ type, detail: e.detail, event: e });
    });
  }
  return events;
}

function countBy(events: Recorded[]): Record<ItemEventType, number> {
  const counts = {
    started: 0,
    completed: 0,
    retrying: 0,
    failed: 0,
    skipped: 0,
  };
  for (const e of events) counts[e.type]++;
  return counts;
}

/**
 * Checks, per item and stage, the sequence
 * started → (retrying → started)* → (completed | failed → skipped?), and
 * that attempts count 1, 2, … across the "started" events.
 */
function assertSequences(events: Recorded[]): Map<string, ItemEventType[]> {
  const byKey = new Map<string, Recorded[]>();
  for (const e of events) {
    const key = `${e.detail.stage}/${e.detail.index}`;
    let list = byKey.get(key);
    if (list === undefined) byKey.set(key, list = []);
    list.push(e);
  }
  const shapes = new Map<string, ItemEventType[]>();
  for (const [key, list] of byKey) {
    const types = list.map((e) => e.type);
    shapes.set(key, types);
    const text = types.join(" ");
    assert.match(
      text,
      /^started( retrying started)*( completed| failed( skipped)?)$/,
      `${key}: ${text}`,
    );
    let attempt = 0;
    for (const e of list) {
      if (e.type === "started") attempt++;
      assert.equal(e.detail.attempt, attempt, `${key} ${e.type} attempt`);
    }
  }
  return shapes;
}

// ---- detail ----------------------------------------------------------------

Deno.test("Flow events are CustomEvents whose detail is { itemId, index, stage, workerId, attempt, timestamp } (+ durationMs when completed) as seen by the call", async () => {
  const seen = new Map<string, TaskContext>();
  const flow = pipeline(
    map(async (x: number, ctx) => {
      seen.set(`fetch/${ctx.index}/${ctx.attempt}`, ctx);
      await sleep(x % 3);
      return x * 2;
    }, { name: "fetch", concurrency: 3 }),
    map((x: number, ctx) => {
      seen.set(`save/${ctx.index}/${ctx.attempt}`, ctx);
      return x + 1;
    }, { name: "save", concurrency: 2 }),
  ).run(range(8), { id: (x) => `item-${x}` });
  const events = record(flow);
  const before = Date.now();
  assert.deepEqual(await flow.collect(), range(8).map((x) => x * 2 + 1));
  const after = Date.now();

  assert.equal(events.length, 32);
  for (const { type, detail, event } of events) {
    assert.ok(event instanceof CustomEvent, `${type} is a CustomEvent`);
    assert.equal(event.type, type);
    assert.deepEqual(
      Object.keys(detail).sort(),
      [
        "attempt",
        ...(type === "completed" ? ["durationMs"] : []),
        "index",
        "itemId",
        "stage",
        "timestamp",
        "workerId",
      ],
      `${type}: no error key on a success; durationMs on "completed"`,
    );
    if (type === "completed") {
      assert.ok((detail as { durationMs: number }).durationMs >= 0);
    }
    const ctx = seen.get(`${detail.stage}/${detail.index}/${detail.attempt}`);
    assert.ok(ctx, `a call for ${detail.stage}/${detail.index}`);
    assert.equal(detail.itemId, `item-${detail.index}`);
    assert.equal(detail.itemId, ctx.itemId);
    assert.equal(detail.workerId, ctx.workerId, `${type} workerId`);
    assert.equal(detail.attempt, 1);
    assert.ok(
      detail.workerId >= 0 &&
        detail.workerId < (detail.stage === "fetch" ? 3 : 2),
      `workerId ${detail.workerId} within the stage's concurrency`,
    );
    assert.equal(typeof detail.timestamp, "number");
    assert.ok(
      detail.timestamp >= before - 1000 && detail.timestamp <= after,
      `timestamp ${detail.timestamp} is Date.now() during the run`,
    );
  }
  // Each item's events carry its own index, at both stages.
  for (const stage of ["fetch", "save"]) {
    const indices = events
      .filter((e) => e.detail.stage === stage && e.type === "completed")
      .map((e) => e.detail.index)
      .sort((a, b) => a - b);
    assert.deepEqual(indices, range(8), stage);
  }
  // Timestamps never go backwards in dispatch order.
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].detail.timestamp >= events[i - 1].detail.timestamp);
  }
});

Deno.test("Flow events carry the error on retrying, failed and skipped, and only there", async () => {
  const errors = new Map<string, Error>();
  const flow = pipeline(map((x: number, ctx) => {
    if (x === 1 || (x === 2 && ctx.attempt === 1)) {
      const error = new Error(`boom ${x}/${ctx.attempt}`);
      errors.set(`${x}/${ctx.attempt}`, error);
      throw error;
    }
    return x;
  }, {
    name: "work",
    retry: { attempts: 2, delayMs: 1, jitter: false },
    onError: "skip",
  })).run([0, 1, 2]);
  const events = record(flow);
  assert.deepEqual(await flow.collect(), [0, 2]);

  const withError = events.filter((e) => "error" in e.detail);
  // Per item in order; items may interleave (item 2 may run during item 1's
  // backoff).
  for (const x of [1, 2]) {
    assert.deepEqual(
      withError
        .filter((e) => e.detail.index === x)
        .map((e) => `${e.type} ${e.detail.attempt}`),
      x === 1 ? ["retrying 1", "failed 2", "skipped 2"] : ["retrying 1"],
    );
  }
  assert.equal(withError.length, 4);
  for (const e of withError) {
    assert.equal(
      e.detail.error,
      errors.get(`${e.detail.index}/${e.detail.attempt}`),
      `${e.type} carries the thrown error itself`,
    );
  }
  for (const e of events) {
    if (e.type === "started" || e.type === "completed") {
      assert.ok(!("error" in e.detail), `${e.type} has no error`);
    }
  }
  assert.equal(flow.failures.length, 1);
  assert.equal(flow.failures[0].error, errors.get("1/2"));
});

// ---- counts and order --------------------------------------------------------

Deno.test("Flow events per item and stage follow started → (retrying → started)* → completed | failed → skipped, and their counts match the run", async () => {
  // x % 5 === 0: fails twice, then succeeds; x % 7 === 3: always fails
  // (skipped after 3 attempts); others succeed at once.
  const failures = (x: number) => x % 7 === 3 ? Infinity : x % 5 === 0 ? 2 : 0;
  const calls = new Map<number, number>();
  const flow = pipeline(
    map(async (x: number, ctx) => {
      calls.set(x, (calls.get(x) ?? 0) + 1);
      await sleep(x % 3);
      if (ctx.attempt <= failures(x)) throw new Error(`fail ${x}`);
      return x;
    }, {
      name: "flaky",
      concurrency: 3,
      retry: { attempts: 3, delayMs: 2, jitter: false },
      onError: "skip",
    }),
    map((x: number) => x + 100, { name: "plain", concurrency: 2 }),
  ).run(range(24));
  const events = record(flow);
  const out = await flow.collect();
  const kept = range(24).filter((x) => failures(x) < 3);
  assert.deepEqual(out, kept.map((x) => x + 100));

  const shapes = assertSequences(events);
  const flaky = events.filter((e) => e.detail.stage === "flaky");
  const plain = events.filter((e) => e.detail.stage === "plain");
  const totalCalls = [...calls.values()].reduce((a, b) => a + b, 0);
  const skipped = range(24).filter((x) => failures(x) === Infinity);
  const retried = range(24).filter((x) => failures(x) === 2);
  assert.deepEqual(countBy(flaky), {
    started: totalCalls,
    completed: kept.length,
    retrying: 2 * retried.length + 2 * skipped.length,
    failed: skipped.length,
    skipped: skipped.length,
  });
  assert.equal(totalCalls, 24 + 2 * retried.length + 2 * skipped.length);
  assert.deepEqual(countBy(plain), {
    started: kept.length,
    completed: kept.length,
    retrying: 0,
    failed: 0,
    skipped: 0,
  });
  for (const x of retried) {
    assert.deepEqual(shapes.get(`flaky/${x}`), [
      "started",
      "retrying",
      "started",
      "retrying",
      "started",
      "completed",
    ]);
  }
  for (const x of skipped) {
    assert.deepEqual(shapes.get(`flaky/${x}`), [
      "started",
      "retrying",
      "started",
      "retrying",
      "started",
      "failed",
      "skipped",
    ]);
    assert.equal(shapes.get(`plain/${x}`), undefined, `${x} never reaches 2`);
  }
  // The counters agree with the events.
  const st = flow.stats().stages[0];
  assert.equal(st.retried, countBy(flaky).retrying);
  assert.equal(st.failed, skipped.length);
  assert.equal(st.skipped, skipped.length);
  assert.equal(st.completed, kept.length);
});

Deno.test("Flow events fire failed (with the error) for the item that fails a run with onError: fail", async () => {
  const boom = new Error("boom");
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(1);
      if (x === 3) throw boom;
      return x;
    }, { name: "work" }),
  ).run(range(6));
  const events = record(flow);
  const reason = await rejection(flow.collect());
  assert.equal((reason as { cause?: unknown }).cause, boom);
  const failed = events.filter((e) => e.type === "failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].detail.index, 3);
  assert.equal(failed[0].detail.stage, "work");
  assert.equal(failed[0].detail.attempt, 1);
  assert.equal(failed[0].detail.error, boom);
  assert.equal(events.filter((e) => e.type === "skipped").length, 0);
  assertSequences(events);
  // Nothing starts after the failure.
  const at = events.indexOf(failed[0]);
  assert.equal(
    events.slice(at + 1).filter((e) => e.type === "started").length,
    0,
  );
});

// ---- timing of the first events ------------------------------------------------

Deno.test("Flow events listeners added right after run() see every event, including the first item's started", async () => {
  for (const source of [() => range(5), () => ReadableStream.from(range(5))]) {
    const flow = pipeline(map((x: number) => x), map((x: number) => x)).run(
      source(),
    );
    const started: number[] = [];
    flow.addEventListener("started", (e) => {
      if (e.detail.stage === "map#1") started.push(e.detail.index);
    });
    const events = record(flow);
    assert.deepEqual(await flow.collect(), range(5));
    assert.deepEqual(started.sort(), range(5));
    assert.equal(events[0].type, "started");
    assert.equal(events[0].detail.index, 0);
    assert.equal(events[0].detail.stage, "map#1");
    assert.equal(countBy(events).completed, 10);
  }
});

Deno.test("Flow events no event fires before the caller's synchronous code has finished", async () => {
  let calls = 0;
  const flow = pipeline(map((x: number) => {
    calls++;
    return x;
  })).run(range(3));
  const events = record(flow);
  const progress: FlowStats[] = [];
  flow.addEventListener("progress", (e) => progress.push(e.detail));
  // Still synchronous: spin a little, nothing may have happened.
  const deadline = Date.now() + 20;
  while (Date.now() < deadline) { /* busy */ }
  assert.equal(events.length, 0);
  assert.equal(progress.length, 0);
  assert.equal(calls, 0);
  await flow.collect();
  assert.equal(countBy(events).started, 3);
  assert.equal(progress.at(-1)?.done, true);
});

Deno.test("Flow events a listener added mid-run sees the events from then on, and a removed one stops receiving", async () => {
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    if (x === 2) await gate.promise;
    return x;
  })).run(range(5));
  const out = flow.collect();
  await until(() => flow.stats().stages[0].completed === 2, "2 items done");
  const late: number[] = [];
  const removed: number[] = [];
  const onRemoved = (e: CustomEvent<ItemEventDetail>) =>
    removed.push(e.detail.index);
  flow.addEventListener("completed", (e) => late.push(e.detail.index));
  flow.addEventListener("completed", onRemoved);
  flow.removeEventListener("completed", onRemoved);
  gate.resolve();
  assert.deepEqual(await out, range(5));
  assert.deepEqual(late, [2, 3, 4]);
  assert.deepEqual(removed, []);
});

// ---- types -------------------------------------------------------------------

Deno.test("Flow events typed listeners: retrying detail is ItemEventDetail, progress detail is FlowStats", async () => {
  const flow = pipeline(map((x: number, ctx) => {
    if (ctx.attempt === 1) throw new Error("once");
    return x;
  }, { retry: { attempts: 2, delayMs: 1 } })).run([1]);
  const attempts: number[] = [];
  const snapshots: FlowStats[] = [];
  flow.addEventListener("retrying", (e) => {
    const n: number = e.detail.attempt; // compile-time: detail is typed
    const stage: string = e.detail.stage;
    // @ts-expect-error attempt is a number, not a string (detail is not any)
    const wrong: string = e.detail.attempt;
    void wrong;
    attempts.push(n);
    assert.equal(stage, "map#1");
  });
  flow.addEventListener("progress", (e) => {
    const stats: FlowStats = e.detail;
    const done: boolean = e.detail.done;
    // @ts-expect-error a progress detail has no attempt
    void e.detail.attempt;
    assert.equal(done, stats.done);
    snapshots.push(stats);
  });
  assert.deepEqual(await flow.collect(), [1]);
  assert.deepEqual(attempts, [1]);
  assert.ok(snapshots.length >= 1);
  assert.equal(snapshots.at(-1)!.itemsOut, 1);
});

// ---- progress ------------------------------------------------------------------

Deno.test("Flow events progress fires at most once per progressIntervalMs, plus once when the run settles", async () => {
  const intervalMs = 50;
  const flow = pipeline(map(async (x: number) => {
    await sleep(50);
    return x;
  })).run(range(10), { progressIntervalMs: intervalMs });
  const t0 = performance.now();
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => {
    assert.ok(e instanceof CustomEvent);
    snapshots.push(e.detail);
  });
  assert.deepEqual(await flow.collect(), range(10));
  const elapsed = performance.now() - t0;
  const count = snapshots.length;
  assert.ok(count >= 3, `${count} progress events over ${elapsed} ms`);
  assert.ok(count <= 12, `${count} progress events over ${elapsed} ms`);
  assert.ok(
    count <= elapsed / intervalMs + 2,
    `${count} progress events over ${elapsed} ms`,
  );
  // Only the last one is final; the counters only grow meanwhile.
  assert.deepEqual(
    snapshots.map((s) => s.done),
    [...Array(count - 1).fill(false), true],
  );
  for (let i = 1; i < count; i++) {
    assert.ok(snapshots[i].itemsOut >= snapshots[i - 1].itemsOut);
    assert.ok(snapshots[i].elapsedMs >= snapshots[i - 1].elapsedMs);
  }
  const last = snapshots.at(-1)!;
  assert.equal(last.itemsIn, 10);
  assert.equal(last.itemsOut, 10);
  assert.equal(last.results, 10);
  assert.equal(last.inFlight, 0);
  assert.equal(last.running, 0);
  assert.equal(last.stages[0].completed, 10);
  // Nothing after the end.
  await sleep(3 * intervalMs);
  assert.equal(snapshots.length, count);
});

Deno.test("Flow events progress uses the default interval of 250 ms", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(30);
    return x;
  })).run(range(10));
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => snapshots.push(e.detail));
  const t0 = performance.now();
  await flow.collect();
  const elapsed = performance.now() - t0;
  assert.ok(
    snapshots.length <= elapsed / 250 + 2,
    `${snapshots.length} events over ${elapsed} ms`,
  );
  assert.equal(snapshots.at(-1)?.done, true);
});

Deno.test("Flow events progress: the timer is cleared and a final event fires when the run is aborted", async () => {
  const flow = pipeline(
    map((_: number, ctx) =>
      new Promise<number>((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve(0), { once: true });
      }), { concurrency: 2 }),
  ).run(range(10), { progressIntervalMs: 5 });
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => snapshots.push(e.detail));
  const out = rejection(flow.collect());
  await until(() => snapshots.length >= 2, "2 progress events");
  await flow.abort(new Error("stop"));
  assert.equal(((await out) as Error).message, "stop");
  const count = snapshots.length;
  const last = snapshots.at(-1)!;
  assert.equal(last.done, true);
  assert.ok(last.cancelled > 0);
  assert.equal(last.inFlight, 0);
  assert.equal(snapshots.filter((s) => s.done).length, 1);
  await sleep(30);
  assert.equal(snapshots.length, count, "no progress after the run settled");
});

Deno.test("Flow events progress: the timer is cleared and a final event fires when the run fails", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(5);
    if (x === 4) throw new Error("boom");
    return x;
  })).run(range(10), { progressIntervalMs: 5 });
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => snapshots.push(e.detail));
  await rejection(flow.collect());
  const count = snapshots.length;
  const last = snapshots.at(-1)!;
  assert.equal(last.done, true);
  assert.equal(last.failed, 1);
  assert.equal(last.inFlight, 0);
  await sleep(30);
  assert.equal(snapshots.length, count, "no progress after the run settled");
});

Deno.test("Flow events progress: the timer is cleared when a for await loop is left early", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(1);
    return x;
  })).run(range(1000), { progressIntervalMs: 5 });
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => snapshots.push(e.detail));
  let n = 0;
  for await (const _ of flow) if (++n === 5) break;
  assert.equal(snapshots.at(-1)?.done, true);
  const count = snapshots.length;
  await sleep(30);
  assert.equal(snapshots.length, count);
});

Deno.test("Flow events progress: a listener added after the run settled starts no timer", async () => {
  const flow = pipeline(map((x: number) => x)).run(range(3), {
    progressIntervalMs: 5,
  });
  await flow.collect();
  const snapshots: FlowStats[] = [];
  flow.addEventListener("progress", (e) => snapshots.push(e.detail));
  await sleep(30);
  assert.equal(snapshots.length, 0);
  // The sanitizer fails this test if an interval was left running.
});

/** Counts setInterval calls and the events `flow` dispatches, listened or not. */
async function observe(
  listen: (flow: Flow<number>) => void,
): Promise<{ intervals: number; dispatched: string[] }> {
  const real = globalThis.setInterval;
  let intervals = 0;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    intervals++;
    return real(...args);
  }) as typeof setInterval;
  const dispatched: string[] = [];
  try {
    const flow = pipeline(map(async (x: number) => {
      await sleep(2);
      return x;
    })).run(range(20), { progressIntervalMs: 1 });
    const dispatch = flow.dispatchEvent.bind(flow);
    flow.dispatchEvent = (event: Event) => {
      dispatched.push(event.type);
      return dispatch(event);
    };
    listen(flow);
    assert.deepEqual(await flow.collect(), range(20));
  } finally {
    globalThis.setInterval = real;
  }
  return { intervals, dispatched };
}

Deno.test("Flow events progress: no timer and no progress event when nobody listens to progress", async () => {
  let completed = 0;
  const only = await observe((flow) =>
    flow.addEventListener("completed", () => completed++)
  );
  assert.equal(completed, 20);
  assert.equal(only.intervals, 0, "no interval without a progress listener");
  assert.equal(only.dispatched.filter((t) => t === "progress").length, 0);

  const none = await observe(() => {});
  assert.equal(none.intervals, 0);
  assert.deepEqual(none.dispatched, [], "no listener: nothing dispatched");

  const withProgress = await observe((flow) =>
    flow.addEventListener("progress", () => {})
  );
  assert.equal(withProgress.intervals, 1, "one interval per run");
  assert.ok(withProgress.dispatched.includes("progress"));
});

Deno.test("Flow events progressIntervalMs rejects 0, negative, non-finite and non-number values, naming the option", () => {
  const p = pipeline(map((x: number) => x));
  const bad: [unknown, ErrorConstructor][] = [
    [0, RangeError],
    [-1, RangeError],
    [NaN, RangeError],
    [Infinity, RangeError],
    ["x", TypeError],
    [null, TypeError],
  ];
  for (const [value, kind] of bad) {
    assert.throws(
      () => p.run([1], { progressIntervalMs: value as number }),
      (e: unknown) => {
        assert.ok(e instanceof kind, `${String(value)}: ${e}`);
        assert.match((e as Error).message, /'progressIntervalMs'/);
        return true;
      },
    );
  }
});

// ---- abort from a listener ---------------------------------------------------

Deno.test("Flow events a listener that calls flow.abort() inside completed stops the run cleanly: it rejects with the reason and no stage function starts afterwards", async () => {
  let aborted = false;
  const lateCalls: string[] = [];
  const flow = pipeline(
    map((x: number) => {
      if (aborted) lateCalls.push(`first ${x}`);
      return x;
    }),
    map((x: number) => {
      if (aborted) lateCalls.push(`second ${x}`);
      return x;
    }),
  ).run(range(10));
  const events = record(flow);
  let n = 0;
  let eventsAtAbort = -1;
  flow.addEventListener("completed", (e) => {
    if (e.detail.stage === "map#1" && ++n === 3) {
      aborted = true;
      eventsAtAbort = events.length;
      flow.abort(new Error("enough"));
    }
  });
  const reason = await withTimeout(rejection(flow.collect()), 5000, "the run");
  assert.equal((reason as Error).message, "enough");
  assert.deepEqual(lateCalls, [], "no stage function ran after abort()");
  assert.equal(
    events.slice(eventsAtAbort).filter((e) => e.type === "started").length,
    0,
    "no started event after abort()",
  );
  const s = flow.stats();
  assert.equal(s.done, true);
  assert.equal(s.inFlight, 0);
  assert.equal(s.running, 0);
  assert.equal(
    s.itemsIn,
    s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
  );
  await ticks();
});

Deno.test("Flow events a listener that calls flow.abort() inside completed at the last stage: the item is cancelled, not also delivered", async () => {
  const flow = pipeline(map((x: number) => x)).run(range(10));
  let n = 0;
  flow.addEventListener("completed", () => {
    if (++n === 2) flow.abort(new Error("enough"));
  });
  const reason = await withTimeout(rejection(flow.collect()), 5000, "the run");
  assert.equal((reason as Error).message, "enough");
  const s = flow.stats();
  assert.equal(s.done, true);
  assert.equal(s.inFlight, 0);
  assert.equal(
    s.itemsIn,
    s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
    `itemsIn ${s.itemsIn} = out ${s.itemsOut} + cancelled ${s.cancelled}`,
  );
  assert.ok(s.cancelled > 0);
  assert.ok(s.itemsOut <= 1, `${s.itemsOut} items out after the abort`);
  assert.equal(s.results, s.itemsOut);
});
