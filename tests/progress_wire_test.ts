import assert from "node:assert/strict";
import {
  batch,
  flatten,
  type FlowStats,
  map,
  pipeline,
  toSSE,
} from "../mod.ts";
import {
  fromWire,
  type ProgressSnapshot,
  type ProgressWire,
  toWire,
} from "../lib/progress_wire.ts";
import * as element from "../web/sluice-dashboard.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stats of a small demo-like run, sampled every few ms while it goes. */
async function statsSeries(): Promise<FlowStats[]> {
  const flow = pipeline(
    map(async (x: number) => {
      await sleep(2 + (x % 5));
      return x;
    }, { name: "fetch", concurrency: 4 }),
    batch({ name: "group", maxSize: 3, maxWaitMs: 5 }),
    map(async (xs: number[]) => {
      await sleep(4);
      return xs;
    }, { name: "rank", concurrency: 2 }),
    flatten(),
  ).run(Array.from({ length: 40 }, (_, i) => i));
  const series: FlowStats[] = [];
  const timer = setInterval(() => series.push(flow.stats()), 3);
  try {
    await flow.collect();
  } finally {
    clearInterval(timer);
  }
  series.push(flow.stats());
  return series;
}

/** What the wire keeps of `stats`: its keyframe, decoded. */
const reference = (stats: FlowStats): ProgressSnapshot =>
  fromWire(toWire(stats))!;

Deno.test("toWire() writes a keyframe, then deltas holding only the changed figures", async () => {
  const series = await statsSeries();
  const key = toWire(series[0]);
  assert.ok("s" in key);
  assert.deepEqual(key.s, ["fetch", "group", "rank", "flatten#4"]);
  assert.equal(key.k, "mbmx");
  assert.equal(key.v.length, 16 + 4 * 19);
  for (let i = 1; i < series.length; i++) {
    const delta = toWire(series[i], series[i - 1]);
    assert.ok("d" in delta);
    assert.equal(delta.d.length % 2, 0);
    const before = (toWire(series[i - 1]) as { v: number[] }).v;
    const after = (toWire(series[i]) as { v: number[] }).v;
    for (let j = 0; j < delta.d.length; j += 2) {
      assert.notEqual(before[delta.d[j]], delta.d[j + 1]);
      assert.equal(after[delta.d[j]], delta.d[j + 1]);
    }
  }
});

Deno.test("fromWire() rebuilds every snapshot from a keyframe and deltas through JSON", async () => {
  const series = await statsSeries();
  let view: ProgressSnapshot | undefined;
  series.forEach((stats, i) => {
    const keyframe = i % 10 === 0;
    const wire = toWire(stats, keyframe ? undefined : series[i - 1]);
    view = fromWire(JSON.parse(JSON.stringify(wire)), view);
    assert.deepEqual(view, reference(stats), `event ${i}`);
  });
  const last = series.at(-1)!;
  assert.equal(view!.done, true);
  assert.equal(view!.itemsOut, 40);
  assert.equal(view!.stages[0].completed, last.stages[0].completed);
  assert.equal(view!.stages[0].workers.length, 4);
  assert.equal(view!.stages[1].kind, "batch");
});

Deno.test("fromWire() keeps the figures a dashboard shows, rounded", () => {
  const latency = {
    count: 3,
    avg: 10,
    min: 1,
    p50: 12.345,
    p95: 140.6,
    p99: 150.2,
    max: 151,
  };
  const stats: FlowStats = {
    elapsedMs: 1234.5,
    itemsIn: 10,
    itemsOut: 4,
    failed: 1,
    skipped: 1,
    filtered: 0,
    cancelled: 0,
    inFlight: 4,
    results: 4,
    running: 2,
    done: false,
    latency,
    stages: [{
      name: "work",
      kind: "map",
      concurrency: 3,
      queued: 2,
      inFlight: 2,
      busy: 2,
      backingOff: 0,
      completed: 5,
      failed: 1,
      skipped: 1,
      retried: 2,
      latency,
      queueWait: latency,
      throughput: 4.0512,
      workers: [
        { workerId: 0, state: "busy", itemId: "a", index: 7, since: 1 },
        { workerId: 1, state: "idle" },
        { workerId: 2, state: "busy", itemId: "b", index: 8 },
      ],
    }],
  };
  const snap = fromWire(toWire(stats))!;
  assert.equal(snap.elapsedMs, 1235);
  assert.deepEqual(snap.latency, {
    count: 3,
    p50: 12.3,
    p95: 141,
    p99: 150,
    max: 151,
  });
  assert.deepEqual(snap.stages[0].workers, [true, false, true]);
  assert.equal(snap.stages[0].throughput, 4.1);
  assert.equal(snap.stages[0].retried, 2);
  assert.deepEqual(snap.stages[0].queueWait, { p50: 12.3, p95: 141 });
  // Full stats of this one-stage run are about 4 times bigger.
  assert.ok(
    JSON.stringify(toWire(stats)).length * 3 < JSON.stringify(stats).length,
  );
});

Deno.test("fromWire() gives undefined for a delta with no keyframe before it, and refuses other shapes", () => {
  assert.equal(fromWire({ d: [0, 10] }), undefined);
  assert.throws(() => fromWire({ x: 1 } as unknown as ProgressWire), {
    name: "TypeError",
    message:
      "'wire' must be a progress keyframe ({ s, k, v }) or delta ({ d }): current value is an object",
  });
  assert.throws(() => toWire(null as unknown as FlowStats), TypeError);
});

Deno.test("toWire() sends a keyframe when the stages differ from the previous stats", async () => {
  const [a] = await statsSeries();
  const other = { ...a, stages: a.stages.slice(1) };
  assert.ok("s" in toWire(other, a));
});

Deno.test("toWire() and the dashboard element's decoder agree", async () => {
  const series = await statsSeries();
  let ts: ProgressSnapshot | undefined;
  let js: object | undefined;
  series.forEach((stats, i) => {
    const data = JSON.stringify(
      toWire(stats, i % 10 === 0 ? undefined : series[i - 1]),
    );
    ts = fromWire(JSON.parse(data), ts);
    js = element.fromWire(JSON.parse(data), js);
    assert.deepEqual(js, ts, `event ${i}`);
    // The element also reads the full shape (and the final done event).
    assert.deepEqual(element.fromStats(stats), reference(stats));
    assert.deepEqual(
      element.decodeProgress(JSON.parse(JSON.stringify(stats))),
      reference(stats),
    );
  });
  assert.equal(element.fromWire({ d: [0, 1] }), undefined);
});

Deno.test('toSSE() progress: "compact" writes a keyframe, then deltas, and full stats at the end', async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(20);
    return x;
  }, { concurrency: 2 })).run([1, 2, 3, 4, 5, 6, 7, 8]);
  const body = await new Response(
    toSSE(flow, { progressMs: 5, progress: "compact" }),
  ).text();
  const events = body.split("\n\n").filter(Boolean).map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
    const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
    return { event, data };
  });
  const progress = events.filter((e) => e.event === "progress").map((e) =>
    JSON.parse(e.data) as ProgressWire
  );
  assert.ok(progress.length >= 4, `${progress.length} progress events`);
  assert.ok("s" in progress[0], "a keyframe first");
  assert.ok("d" in progress[1], "then deltas");
  progress.forEach((p, i) => assert.equal("s" in p, i % 10 === 0, `${i}`));
  let view: ProgressSnapshot | undefined;
  const out: number[] = [];
  for (const p of progress) {
    view = fromWire(p, view);
    out.push(view!.itemsOut);
    assert.equal(view!.stages[0].concurrency, 2);
  }
  assert.deepEqual(out, [...out].sort((a, b) => a - b), "never goes back");
  const done = events.at(-1)!;
  assert.equal(done.event, "done");
  assert.equal((JSON.parse(done.data) as FlowStats).itemsOut, 8);
  assert.throws(
    () =>
      toSSE(pipeline(map((x: number) => x)).run([1]), {
        progress: "tiny" as "full",
      }),
    {
      name: "TypeError",
      message:
        `'progress' must be "full" or "compact": current value is "tiny"`,
    },
  );
});
