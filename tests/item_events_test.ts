// Item events added by issue 19: "queued" (once per item per stage, before
// its "started"), durationMs on completed/failed/retrying, the task's name in
// a multi-task stage, and an adaptive stage ("concurrency" events with reason
// "adaptive", stats().stages[i].adaptive).
import assert from "node:assert/strict";
import {
  batch,
  type ConcurrencyEventDetail,
  filter,
  flatten,
  type Flow,
  type ItemEventDetail,
  map,
  pipeline,
  type QueuedEventDetail,
} from "../mod.ts";
import { asyncSource, FakeTime, range, sleep } from "./_helpers.ts";

interface Seen {
  type: string;
  stage: string;
  id: unknown;
  detail: ItemEventDetail | QueuedEventDetail;
}

/** Records queued, started, completed, retrying, failed, skipped in order. */
function record(flow: Flow<unknown>): Seen[] {
  const seen: Seen[] = [];
  for (
    const type of [
      "queued",
      "started",
      "completed",
      "retrying",
      "failed",
      "skipped",
    ] as const
  ) {
    flow.addEventListener(type, (e) => {
      const d = e.detail as ItemEventDetail;
      seen.push({ type, stage: d.stage, id: d.itemId, detail: d });
    });
  }
  return seen;
}

/**
 * Checks that "queued" fired at most once per (stage, item) and before that
 * item's first "started" at that stage; returns the queued ids per stage.
 */
function queuedByStage(seen: Seen[]): Map<string, unknown[]> {
  const queuedAt = new Map<string, number>();
  const byStage = new Map<string, unknown[]>();
  seen.forEach((e, i) => {
    const key = `${e.stage}/${String(e.id)}`;
    if (e.type === "queued") {
      assert.ok(!queuedAt.has(key), `queued twice: ${key}`);
      queuedAt.set(key, i);
      let ids = byStage.get(e.stage);
      if (ids === undefined) byStage.set(e.stage, ids = []);
      ids.push(e.id);
    } else if (e.type === "started") {
      const at = queuedAt.get(key);
      assert.ok(at !== undefined && at < i, `started before queued: ${key}`);
    }
  });
  return byStage;
}

const sorted = (ids: unknown[] | undefined) =>
  [...(ids ?? [])].sort((a, b) => (a as number) - (b as number));

for (
  const [kind, make] of [
    ["a synchronous array", () => range(10)],
    ["an async generator", () => asyncSource(10).source],
  ] as const
) {
  Deno.test(`queued fires once per item per stage (map, filter, batch, flatten, map) before its started there, over ${kind}`, async () => {
    const flow = pipeline(
      map(async (x: number) => {
        await sleep(0);
        return x;
      }, { name: "m", concurrency: 2 }),
      filter((x: number) => x % 2 === 0, { name: "f", concurrency: 3 }),
      batch<number>({ maxSize: 2, name: "b" }),
      flatten<number>({ name: "fl" }),
      map((x: number) => x * 10, { name: "z" }),
    ).run(make());
    const seen = record(flow);
    assert.deepEqual(await flow.collect(), [0, 20, 40, 60, 80]);
    const q = queuedByStage(seen);
    assert.deepEqual(sorted(q.get("m")), range(10));
    assert.deepEqual(sorted(q.get("f")), range(10));
    assert.deepEqual(sorted(q.get("b")), [0, 2, 4, 6, 8]);
    // A batch moves on under its first item's id.
    assert.deepEqual(sorted(q.get("fl")), [0, 4, 8]);
    assert.deepEqual(sorted(q.get("z")), [0, 2, 4, 6, 8]);
    // Every call was queued first.
    const started = seen.filter((e) => e.type === "started").length;
    assert.equal(started, 10 + 10 + 5);
    const d = seen.find((e) => e.type === "queued")!.detail;
    assert.deepEqual(Object.keys(d).sort(), [
      "index",
      "itemId",
      "stage",
      "timestamp",
    ]);
  });
}

Deno.test("queued fires once per item at a first-stage batch (each source item), then once per batch at the next stage", async () => {
  const flow = pipeline(
    batch<number>({ maxSize: 3, name: "b" }),
    map((xs: number[]) => xs.length, { name: "m" }),
  ).run(range(7));
  const seen = record(flow);
  assert.deepEqual(await flow.collect(), [3, 3, 1]);
  const q = queuedByStage(seen);
  assert.deepEqual(sorted(q.get("b")), range(7));
  assert.deepEqual(sorted(q.get("m")), [0, 3, 6]);
});

Deno.test("queued fires once per item at a first-stage batch over an async generator", async () => {
  const flow = pipeline(batch<number>({ maxSize: 4, name: "b" }))
    .run(asyncSource(6).source);
  const seen = record(flow);
  assert.deepEqual(await flow.collect(), [[0, 1, 2, 3], [4, 5]]);
  assert.deepEqual(sorted(queuedByStage(seen).get("b")), range(6));
});

Deno.test("queued fires when an item waits for a slot, not again when it starts; a retry fires no second queued", async () => {
  let failedOnce = false;
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(1);
      if (x === 1 && !failedOnce) {
        failedOnce = true;
        throw new Error("again");
      }
      return x;
    }, { name: "m", retry: { attempts: 2, delayMs: 1 } }),
  ).run([0, 1, 2]);
  const seen = record(flow);
  assert.deepEqual(await flow.collect(), [0, 1, 2]);
  const q = queuedByStage(seen);
  assert.deepEqual(sorted(q.get("m")), [0, 1, 2]);
  assert.equal(seen.filter((e) => e.type === "started").length, 4);
});

Deno.test("durationMs on completed, retrying and failed equals the call's time on FakeTime; started and skipped have none", async () => {
  using time = new FakeTime();
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(x === 0 ? 30 : 20);
      if (x === 1) throw new Error("no");
      return x;
    }, {
      name: "m",
      concurrency: 2,
      retry: { attempts: 2, delayMs: 5 },
      onError: "skip",
    }),
  ).run([0, 1]);
  const seen = record(flow);
  const out = flow.collect();
  await time.runAllAsync();
  assert.deepEqual(await out, [0]);
  const of = (type: string) =>
    seen.filter((e) => e.type === type).map((e) =>
      (e.detail as ItemEventDetail).durationMs
    );
  assert.deepEqual(of("completed"), [30]);
  assert.deepEqual(of("retrying"), [20]);
  assert.deepEqual(of("failed"), [20]);
  assert.deepEqual(of("started"), [undefined, undefined, undefined]);
  assert.deepEqual(of("skipped"), [undefined]);
  for (const e of seen.filter((e) => e.type !== "queued")) {
    assert.equal(
      "durationMs" in e.detail,
      ["completed", "retrying", "failed"].includes(e.type),
    );
  }
});

Deno.test("durationMs on a plain stage's completed and failed equals the call's time on FakeTime", async () => {
  using time = new FakeTime();
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(10 * (x + 1));
      if (x === 2) throw new Error("two");
      return x;
    }, { name: "m", concurrency: 3 }),
  ).run([0, 1, 2]);
  const seen = record(flow);
  const out = flow.collect();
  out.catch(() => {});
  await time.runAllAsync();
  await assert.rejects(out, /two/);
  const durations = seen
    .filter((e) => e.type === "completed" || e.type === "failed")
    .map((e) => [e.type, e.id, (e.detail as ItemEventDetail).durationMs]);
  assert.deepEqual(durations, [
    ["completed", 0, 10],
    ["completed", 1, 20],
    ["failed", 2, 30],
  ]);
});

Deno.test("durationMs is a number >= 0 on completed with real time, also for synchronous calls", async () => {
  const flow = pipeline(map((x: number) => x, { name: "m" }))
    .run(range(20));
  const seen = record(flow);
  await flow.collect();
  const completed = seen.filter((e) => e.type === "completed");
  assert.equal(completed.length, 20);
  for (const e of completed) {
    const ms = (e.detail as ItemEventDetail).durationMs;
    assert.equal(typeof ms, "number");
    assert.ok(ms! >= 0 && Number.isFinite(ms), `durationMs ${ms}`);
  }
});

// Two named tasks; item 1 fails once in fetchIt, item 2 once in parseIt,
// item 3 always in parseIt.
function fetchAndParse() {
  const failures = new Map<string, number>();
  const failOnce = (key: string) => {
    const n = failures.get(key) ?? 0;
    failures.set(key, n + 1);
    return n === 0;
  };
  async function fetchIt(x: number) {
    await sleep(0);
    if (x === 1 && failOnce("fetch1")) throw new Error("fetch 1");
    return x;
  }
  async function parseIt(x: number) {
    await sleep(0);
    if (x === 2 && failOnce("parse2")) throw new Error("parse 2");
    if (x === 3) throw new Error("parse 3");
    return x;
  }
  return [fetchIt, parseIt] as const;
}

Deno.test("task: a multi-task stage with retry names the function on started, retrying, completed and failed", async () => {
  const flow = pipeline(
    map(fetchAndParse(), {
      name: "m",
      retry: { attempts: 2, delayMs: 1 },
      onError: "skip",
    }),
  ).run([0, 1, 2, 3]);
  const seen = record(flow);
  assert.deepEqual(await flow.collect(), [0, 1, 2]);
  const tasks = (type: string, id: number) =>
    seen.filter((e) => e.type === type && e.id === id).map((e) =>
      (e.detail as ItemEventDetail).task
    );
  assert.deepEqual(tasks("started", 0), ["fetchIt", "parseIt"]);
  assert.deepEqual(tasks("started", 1), ["fetchIt", "fetchIt", "parseIt"]);
  assert.deepEqual(tasks("retrying", 1), ["fetchIt"]);
  assert.deepEqual(tasks("retrying", 2), ["parseIt"]);
  assert.deepEqual(tasks("retrying", 3), ["parseIt"]);
  assert.deepEqual(tasks("failed", 3), ["parseIt"]);
  // completed fires once per item and stage: the stage's last function.
  for (const id of [0, 1, 2]) {
    assert.deepEqual(tasks("completed", id), ["parseIt"], `item ${id}`);
  }
  for (const e of seen.filter((e) => e.type !== "queued")) {
    if (e.type !== "skipped") {
      assert.equal(typeof (e.detail as ItemEventDetail).task, "string");
    }
  }
});

Deno.test("task: a multi-task stage without retry names the failing function on failed (anonymous: task#<position>)", async () => {
  async function fetchIt(x: number) {
    await sleep(0);
    if (x === 1) throw new Error("fetch");
    return x;
  }
  const fns = [
    fetchIt,
    (x: number) => {
      if (x === 2) throw new Error("anon");
      return x;
    },
  ] as const;
  assert.equal(fns[1].name, "");
  for (const [bad, task] of [[1, "fetchIt"], [2, "task#2"]] as const) {
    const flow = pipeline(map(fns, { name: "m" })).run([0, bad]);
    const seen = record(flow);
    await assert.rejects(flow.collect());
    const failed = seen.filter((e) => e.type === "failed");
    assert.equal(failed.length, 1);
    assert.equal((failed[0].detail as ItemEventDetail).task, task);
    // The plain path names no task on the other events.
    for (const e of seen.filter((e) => e.type !== "failed")) {
      assert.equal("task" in e.detail, false, e.type);
    }
  }
});

Deno.test("task: single-function stages name no task on any event", async () => {
  async function fetchIt(x: number) {
    await sleep(0);
    if (x === 1) throw new Error("once");
    return x;
  }
  const flow = pipeline(
    map(fetchIt, {
      name: "m",
      retry: { attempts: 2, delayMs: 1 },
      onError: "skip",
    }),
    map(fetchIt, { name: "plain" }),
  ).run([0, 1]);
  const seen = record(flow);
  assert.deepEqual(await flow.collect(), [0]);
  assert.ok(seen.some((e) => e.type === "retrying"));
  assert.ok(seen.some((e) => e.type === "failed"));
  for (const e of seen) assert.equal("task" in e.detail, false, e.type);
});

// ---- an adaptive stage -----------------------------------------------------

/**
 * A fake API on the virtual clock: each call takes 10 ms and throws
 * { status: 429 } when more than `capacity` calls run at once.
 */
function fakeApi(capacity: number) {
  const api = { running: 0, peak: 0, rejected: 0 };
  const call = async (x: number) => {
    api.running++;
    api.peak = Math.max(api.peak, api.running);
    try {
      if (api.running > capacity) {
        api.rejected++;
        await sleep(1);
        throw { status: 429 };
      }
      await sleep(10);
      return x * 2;
    } finally {
      api.running--;
    }
  };
  return { api, call };
}

Deno.test("adaptive: a map over an API that 429s above 6 calls delivers every result in order, within [min, max], with 'adaptive' concurrency events", async () => {
  using time = new FakeTime();
  const { api, call } = fakeApi(6);
  const flow = pipeline(
    map(call, {
      name: "api",
      concurrency: { adaptive: { min: 1, max: 32 } },
      retry: {
        attempts: 5,
        delayMs: 1,
        retryIf: (e) => (e as { status?: number }).status === 429,
      },
    }),
  ).run(range(300));
  const changes: ConcurrencyEventDetail[] = [];
  flow.addEventListener("concurrency", (e) => {
    changes.push(e.detail);
    // The stage's concurrency is the adaptive limit, at every change.
    const st = flow.stats().stages[0];
    assert.equal(st.concurrency, e.detail.to);
    assert.equal(st.adaptive!.limit, e.detail.to);
  });
  const out = flow.collect();
  await time.runAllAsync(100_000);
  assert.deepEqual(await out, range(300).map((x) => x * 2));
  assert.ok(changes.length > 0, "concurrency events");
  for (const c of changes) {
    assert.equal(c.stage, "api");
    assert.equal(c.reason, "adaptive");
    assert.ok(c.to >= 1 && c.to <= 32, `to ${c.to}`);
    assert.notEqual(c.from, c.to);
  }
  for (let i = 1; i < changes.length; i++) {
    assert.equal(changes[i].from, changes[i - 1].to, "events chain");
  }
  // It grew from its initial limit (min, 1) past the API's capacity, met
  // 429s and cut its limit.
  assert.ok(api.rejected > 0, "429s");
  assert.ok(changes.some((c) => c.to > 6), "grew past 6");
  assert.ok(changes.some((c) => c.to < c.from), "cut");
  assert.ok(changes.some((c) => c.to > c.from), "raised");
  const st = flow.stats().stages[0];
  const adaptive = st.adaptive!;
  assert.equal(adaptive.min, 1);
  assert.equal(adaptive.max, 32);
  assert.ok(adaptive.limit >= 1 && adaptive.limit <= 32);
  assert.equal(st.concurrency, adaptive.limit);
  assert.ok(Array.isArray(adaptive.history) && adaptive.history.length > 0);
  assert.ok(api.peak <= 32);
  // Every 429 was retried into a success: no item failed for good.
  assert.equal(st.failed, 0);
});

Deno.test("adaptive: a non-adaptive stage has no adaptive stats", async () => {
  const flow = pipeline(map((x: number) => x, { concurrency: 3 })).run([1]);
  await flow.collect();
  assert.equal(flow.stats().stages[0].adaptive, undefined);
  assert.equal(flow.stats().stages[0].concurrency, 3);
});

Deno.test("adaptive: bad adaptive options throw at map(), naming the option", () => {
  const bad: [unknown, RegExp, ErrorConstructor][] = [
    [
      { adaptive: { min: 0, max: 4 } },
      /'concurrency\.adaptive\.min'/,
      RangeError,
    ],
    [
      { adaptive: { min: 4, max: 2 } },
      /'concurrency\.adaptive\.max'/,
      RangeError,
    ],
    [
      { adaptive: { min: 1, max: 1.5 } },
      /'concurrency\.adaptive\.max'/,
      RangeError,
    ],
    [
      { adaptive: { min: 2, max: 8, initial: 1 } },
      /'concurrency\.adaptive\.initial'/,
      RangeError,
    ],
    [
      { adaptive: { min: 2, max: 8, initial: 9 } },
      /'concurrency\.adaptive\.initial'/,
      RangeError,
    ],
    [
      { adaptive: { min: "1", max: 8 } },
      /'concurrency\.adaptive\.min'/,
      TypeError,
    ],
    [{}, /'concurrency'/, TypeError],
  ];
  for (const [concurrency, message, type] of bad) {
    assert.throws(
      () =>
        map((x: number) => x, {
          concurrency: concurrency as {
            adaptive: { min: number; max: number };
          },
        }),
      (e: unknown) => e instanceof type && message.test((e as Error).message),
      JSON.stringify(concurrency),
    );
  }
});

Deno.test("adaptive stage: a concurrency listener that stops the run as a call succeeds leaves every item counted once", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(0);
    return x;
  }, { concurrency: { adaptive: { min: 1, max: 8 } } })).run(
    Array.from({ length: 40 }, (_, i) => i),
  );
  let stopped = false;
  flow.addEventListener("concurrency", () => {
    if (!stopped) void flow.abort(); // inside the call's success
    stopped = true;
  });
  await flow.collect().catch(() => {});
  const s = flow.stats();
  assert.ok(stopped, "the limit moved");
  assert.equal(s.inFlight, 0);
  assert.equal(
    s.itemsIn,
    s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
  );
});
