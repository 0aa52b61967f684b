// Item tracking (issue 19): run(source, { track }), flow.item(id) and
// flow.items({ status }). Each item's status, stage, attempts, error and last
// transitions, and the bounds on what is kept.
import assert from "node:assert/strict";
import {
  batch,
  filter,
  flatten,
  type ItemRecord,
  map,
  pipeline,
  type TaskContext,
} from "../mod.ts";
import {
  deferred,
  FakeTime,
  Gates,
  rejection,
  until,
  whenAborted,
} from "./_helpers.ts";

/** "status@stage" for each transition of `rec`. */
function path(rec: ItemRecord | undefined): string[] {
  assert.ok(rec !== undefined, "a record");
  return rec.history.map((h) => `${h.status}@${h.stage}`);
}

Deno.test("track: an item's history through map → filter → map is queued/running at each stage, then done at the last", async () => {
  const flow = pipeline(
    map((x: number) => x + 1, { name: "inc" }),
    filter((x: number) => x % 2 === 0, { name: "even" }),
    map((x: number) => x * 10, { name: "times" }),
  ).run([1, 2, 3], { track: true });
  assert.deepEqual(await flow.collect(), [20, 40]);
  const kept = flow.item(0)!;
  assert.equal(kept.status, "done");
  assert.equal(kept.stage, "times");
  assert.equal(kept.index, 0);
  assert.equal(kept.attempts, 1);
  assert.equal(kept.error, undefined);
  assert.deepEqual(path(kept), [
    "queued@inc",
    "running@inc",
    "queued@even",
    "running@even",
    "queued@times",
    "running@times",
    "done@times",
  ]);
  const dropped = flow.item(1)!;
  assert.equal(dropped.status, "filtered");
  assert.equal(dropped.stage, "even");
  assert.deepEqual(path(dropped), [
    "queued@inc",
    "running@inc",
    "queued@even",
    "running@even",
    "filtered@even",
  ]);
  // Transitions are timestamped, in order.
  const at = kept.history.map((h) => h.at);
  assert.deepEqual(at, [...at].sort((a, b) => a - b));
});

Deno.test("track: an item being worked on shows running at its stage, one waiting for a slot shows queued", async () => {
  const gates = new Gates<number>();
  const flow = pipeline(
    map((x: number) => gates.wait(x).then(() => x), { name: "slow" }),
  ).run([0, 1], { track: true });
  const out = flow.collect();
  await until(() => gates.started.length === 1, "the first call");
  assert.equal(flow.item(0)!.status, "running");
  assert.equal(flow.item(0)!.stage, "slow");
  const waiting = flow.item(1);
  // Read (it waits in the stage's queue) or not yet read (unknown).
  if (waiting !== undefined) assert.equal(waiting.status, "queued");
  gates.openAll();
  gates.open(1);
  assert.deepEqual(await out, [0, 1]);
  assert.equal(flow.item(1)!.status, "done");
});

Deno.test("track: a retried item keeps the error of its failed attempt, counts its attempts and ends done", async () => {
  let calls = 0;
  const boom = new Error("once");
  const flow = pipeline(
    map((x: number) => {
      if (x === 1 && calls++ === 0) throw boom;
      return x;
    }, { name: "m", retry: { attempts: 3, delayMs: 1 } }),
  ).run([0, 1, 2], { track: true });
  assert.deepEqual(await flow.collect(), [0, 1, 2]);
  const rec = flow.item(1)!;
  assert.equal(rec.status, "done");
  assert.equal(rec.attempts, 2);
  assert.equal(rec.error, boom);
  assert.deepEqual(path(rec), [
    "queued@m",
    "running@m",
    "retrying@m",
    "running@m",
    "done@m",
  ]);
  assert.equal(rec.history[2].error, boom);
  assert.equal(rec.history[3].error, undefined);
  assert.equal(flow.item(0)!.attempts, 1);
});

Deno.test("track: onError: skip leaves the item skipped with its error", async () => {
  const bad = new Error("bad");
  const flow = pipeline(
    map((x: number) => {
      if (x === 1) throw bad;
      return x;
    }, { name: "m", onError: "skip" }),
  ).run([0, 1, 2], { track: true });
  assert.deepEqual(await flow.collect(), [0, 2]);
  const rec = flow.item(1)!;
  assert.equal(rec.status, "skipped");
  assert.equal(rec.stage, "m");
  assert.equal(rec.error, bad);
  assert.deepEqual(path(rec), [
    "queued@m",
    "running@m",
    "failed@m",
    "skipped@m",
  ]);
});

Deno.test("track: onError returning { value } lets the item go on to the next stage and end done, the error kept", async () => {
  const bad = new Error("bad");
  const flow = pipeline(
    map((x: number) => {
      if (x === 1) throw bad;
      return x;
    }, { name: "m", onError: () => ({ value: -1 }) }),
    map((x: number) => x, { name: "n" }),
  ).run([0, 1, 2], { track: true });
  assert.deepEqual(await flow.collect(), [0, -1, 2]);
  const rec = flow.item(1)!;
  assert.equal(rec.status, "done");
  assert.equal(rec.stage, "n");
  assert.equal(rec.error, bad);
  assert.deepEqual(path(rec), [
    "queued@m",
    "running@m",
    "failed@m",
    "queued@n",
    "running@n",
    "done@n",
  ]);
});

Deno.test("track: a failing run leaves the failed item failed and the items in flight cancelled", async () => {
  const gates = new Gates<number>();
  const bad = new Error("bad");
  const flow = pipeline(
    map(async (x: number, ctx: TaskContext) => {
      if (x === 1) {
        await gates.wait(1);
        throw bad;
      }
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve(), { once: true })
      );
      return x;
    }, { name: "m", concurrency: 3 }),
  ).run([0, 1, 2], { track: true });
  const out = rejection(flow.collect());
  await until(() => gates.started.length === 1, "item 1's call");
  await until(
    () => [...flow.items({ status: "running" })].length === 3,
    "three calls",
  );
  gates.open(1);
  assert.match(String(await out), /bad/);
  const failed = flow.item(1)!;
  assert.equal(failed.status, "failed");
  assert.equal(failed.error, bad);
  for (const id of [0, 2]) {
    const rec = flow.item(id)!;
    assert.equal(rec.status, "cancelled", `item ${id}`);
    assert.equal(rec.stage, "m");
  }
  assert.deepEqual(
    [...flow.items({ status: "cancelled" })].map((r) => r.id).sort(),
    [0, 2],
  );
});

Deno.test("track: aborting mid-run cancels the items in flight (also those waiting in a later stage's queue)", async () => {
  const gates = new Gates<number>();
  const flow = pipeline(
    map((x: number) => x, { name: "a", concurrency: 4 }),
    map(
      (x: number, ctx: TaskContext) =>
        Promise.race([gates.wait(x), whenAborted(ctx.signal)]).then(() => x),
      { name: "b" },
    ),
  ).run([0, 1, 2], { track: true });
  const out = rejection(flow.collect());
  await until(() => gates.started.length === 1, "b's first call");
  await until(
    () => flow.item(2)?.stage === "b",
    "item 2 waiting at b",
  );
  assert.equal(flow.item(2)!.status, "queued");
  flow.abort(new Error("stop"));
  assert.equal((await out as Error).message, "stop");
  assert.equal(flow.item(0)!.status, "cancelled");
  assert.equal(flow.item(0)!.stage, "b");
  assert.deepEqual(path(flow.item(2)).slice(-2), ["queued@b", "cancelled@b"]);
  assert.equal([...flow.items({ status: ["running", "queued"] })].length, 0);
});

Deno.test("track: batch members follow their batch (item(id) of a non-first member shows the batch's status and stage), and batch → flatten gives them their own records back", async () => {
  const inMap = deferred();
  const release = deferred();
  const flow = pipeline(
    batch<number>({ maxSize: 3, name: "group" }),
    map(async (xs: number[]) => {
      if (xs[0] === 0) {
        inMap.resolve();
        await release.promise;
      }
      return xs;
    }, { name: "work" }),
    flatten<number>({ name: "split" }),
    map((x: number) => x % 3 === 1 ? Promise.reject(new Error("x")) : x, {
      name: "each",
      onError: "skip",
    }),
  ).run([0, 1, 2, 3, 4], { track: true });
  const out = flow.collect();
  await inMap.promise;
  for (const id of [0, 1, 2]) {
    const rec = flow.item(id)!;
    assert.equal(rec.status, "running", `member ${id}`);
    assert.equal(rec.stage, "work", `member ${id}`);
    assert.equal(rec.index, id);
  }
  // The members are listed too (not only the batch's first item).
  assert.deepEqual(
    [...flow.items({ status: "running" })].map((r) => r.id).sort(),
    [0, 1, 2],
  );
  release.resolve();
  assert.deepEqual(await out, [0, 2, 3]);
  // After the flatten each member went its own way: 1 and 4 were skipped.
  assert.equal(flow.item(0)!.status, "done");
  assert.equal(flow.item(1)!.status, "skipped");
  assert.equal(flow.item(2)!.status, "done");
  assert.equal(flow.item(4)!.status, "skipped");
  assert.deepEqual(path(flow.item(2)), [
    "queued@group",
    "queued@work",
    "running@work",
    "queued@split",
    "queued@each",
    "running@each",
    "done@each",
  ]);
});

Deno.test("track: a flatten fan-out (one item → 3 elements) is done only when its last element is", async () => {
  const gates = new Gates<string>();
  const flow = pipeline(
    map((x: number) => [`${x}a`, `${x}b`, `${x}c`], { name: "fan" }),
    flatten<string>({ name: "split" }),
    map((s: string) => gates.wait(s).then(() => s), {
      name: "each",
      concurrency: 3,
    }),
  ).run([0], { track: true });
  const out = flow.collect();
  await until(() => gates.started.length === 3, "three element calls");
  gates.open("0a");
  gates.open("0b");
  await until(
    () => flow.stats().stages[2].completed === 2,
    "two elements done",
  );
  const mid = flow.item(0)!;
  assert.notEqual(mid.status, "done");
  assert.deepEqual([...flow.items({ status: "done" })], []);
  gates.open("0c");
  assert.deepEqual(await out, ["0a", "0b", "0c"]);
  const rec = flow.item(0)!;
  assert.equal(rec.status, "done");
  assert.equal(rec.stage, "each");
  assert.equal(path(rec).filter((p) => p === "done@each").length, 1);
});

Deno.test("track: history: n keeps the last n transitions", async () => {
  const flow = pipeline(
    map((x: number) => x, { name: "a" }),
    map((x: number) => x, { name: "b" }),
  ).run([0, 1], { track: { history: 2 } });
  await flow.collect();
  assert.deepEqual(path(flow.item(0)), ["running@b", "done@b"]);
  assert.deepEqual(path(flow.item(1)), ["running@b", "done@b"]);
});

Deno.test("track: keep: k keeps the last k finished records (older ones are unknown)", async () => {
  const flow = pipeline(map((x: number) => x, { name: "m" }))
    .run([0, 1, 2, 3, 4, 5], { track: { keep: 3 } });
  await flow.collect();
  assert.deepEqual([...flow.items()].map((r) => r.id), [3, 4, 5]);
  assert.equal(flow.item(0), undefined);
  assert.equal(flow.item(5)!.status, "done");
});

Deno.test("track: keep: 0 keeps no finished record", async () => {
  const flow = pipeline(map((x: number) => x))
    .run([0, 1, 2], { track: { keep: 0 } });
  await flow.collect();
  assert.deepEqual([...flow.items()], []);
  assert.equal(flow.item(2), undefined);
});

Deno.test("track: items({ status }) takes one status or an array of them", async () => {
  const flow = pipeline(
    map((x: number) => {
      if (x === 3) throw new Error("three");
      return x;
    }, { name: "m", onError: "skip" }),
    filter((x: number) => x !== 1, { name: "f" }),
  ).run([0, 1, 2, 3], { track: true });
  assert.deepEqual(await flow.collect(), [0, 2]);
  const ids = (recs: Iterable<ItemRecord>) => [...recs].map((r) => r.id).sort();
  assert.deepEqual(ids(flow.items({ status: "done" })), [0, 2]);
  assert.deepEqual(ids(flow.items({ status: "filtered" })), [1]);
  assert.deepEqual(ids(flow.items({ status: ["filtered", "skipped"] })), [
    1,
    3,
  ]);
  assert.deepEqual(ids(flow.items({ status: [] })), []);
  assert.deepEqual(ids(flow.items()), [0, 1, 2, 3]);
  assert.deepEqual(ids(flow.items({})), [0, 1, 2, 3]);
});

Deno.test("track: records are copies: changing one changes nothing kept", async () => {
  const flow = pipeline(map((x: number) => x)).run([0], { track: true });
  await flow.collect();
  const rec = flow.item(0)! as unknown as {
    status: string;
    history: unknown[];
  };
  rec.status = "queued";
  rec.history.length = 0;
  assert.equal(flow.item(0)!.status, "done");
  assert.equal(flow.item(0)!.history.length, 3);
});

Deno.test("track: run(src, { id }) keys the records by the custom id; the index is the input position", async () => {
  const flow = pipeline(
    map((x: string) => x.toUpperCase(), { name: "m" }),
  )
    .run(["a", "b"], { track: true, id: (x) => `id-${x}` });
  assert.deepEqual(await flow.collect(), ["A", "B"]);
  const rec = flow.item("id-b")!;
  assert.equal(rec.id, "id-b");
  assert.equal(rec.index, 1);
  assert.equal(rec.status, "done");
  assert.equal(flow.item(1), undefined);
});

Deno.test("track: bad options are errors naming the option and its value", () => {
  const p = pipeline(map((x: number) => x));
  assert.throws(
    () => p.run([1], { track: 3 as unknown as boolean }),
    (e: unknown) =>
      e instanceof TypeError && /'track'/.test(e.message) &&
      /3/.test(e.message),
  );
  assert.throws(
    () => p.run([1], { track: { history: 0 } }),
    (e: unknown) =>
      e instanceof RangeError && /'track\.history'/.test(e.message) &&
      /0/.test(e.message),
  );
  assert.throws(
    () => p.run([1], { track: { keep: -1 } }),
    (e: unknown) =>
      e instanceof RangeError && /'track\.keep'/.test(e.message) &&
      /-1/.test(e.message),
  );
  assert.throws(
    () => p.run([1], { track: { history: 1.5 } }),
    (e: unknown) => e instanceof Error && /'track\.history'/.test(e.message),
  );
});

Deno.test("track: items({ status }) with an unknown status is an error naming it", async () => {
  const flow = pipeline(map((x: number) => x)).run([1], { track: true });
  assert.throws(
    () => flow.items({ status: "nope" as "done" }),
    (e: unknown) =>
      (e instanceof TypeError || e instanceof RangeError) &&
      /'status'/.test(e.message) && /nope/.test(e.message),
  );
  assert.throws(
    () => flow.items({ status: ["done", "nope" as "done"] }),
    (e: unknown) => e instanceof Error && /nope/.test(e.message),
  );
  assert.throws(
    () => flow.items({ status: 3 as unknown as "done" }),
    (e: unknown) => e instanceof TypeError && /'status'/.test(e.message),
  );
  await flow.collect();
});

Deno.test("track: flow.item() and flow.items() without track throw a TypeError saying to use { track: true }", async () => {
  const flow = pipeline(map((x: number) => x)).run([1]);
  assert.throws(
    () => flow.item(0),
    (e: unknown) =>
      e instanceof TypeError && e.message.includes("{ track: true }"),
  );
  assert.throws(
    () => flow.items(),
    (e: unknown) =>
      e instanceof TypeError && e.message.includes("{ track: true }"),
  );
  await flow.collect();
});

Deno.test("track: transition times follow the clock (FakeTime): running → done spans the call", async () => {
  using time = new FakeTime();
  const flow = pipeline(
    map(async (x: number) => {
      await new Promise((r) => setTimeout(r, 40));
      return x;
    }, { name: "m" }),
  ).run([0], { track: true });
  const out = flow.collect();
  await time.tickAsync(0);
  await time.tickAsync(40);
  assert.deepEqual(await out, [0]);
  const h = flow.item(0)!.history;
  assert.deepEqual(h.map((x) => x.status), ["queued", "running", "done"]);
  assert.equal(h[2].at - h[1].at, 40);
});

// Soak: an endless source through map(8) → batch(16) → flatten with
// track: { keep: 100 }. Live records are items in the run, which the
// read-ahead budget bounds: bufferSize + map concurrency + batch maxSize
// = 1024 + 8 + 16 = 1048 (default bufferSize 1024). Finished records stay at
// exactly `keep` once more than that have finished. flow.items() yields live
// (with batch members) then finished records, so its length is live +
// finished.
Deno.test("track: soak — after 50,000 items of an endless source, live records stay within the read-ahead bound and finished ones at keep", async () => {
  const BOUND = 1024 + 8 + 16;
  function* endless() {
    for (let i = 0;; i++) yield i;
  }
  const flow = pipeline(
    map((x: number) => x, { concurrency: 8, name: "m" }),
    batch<number>({ maxSize: 16, name: "b" }),
    flatten<number>({ name: "f" }),
  ).run(endless(), { track: { keep: 100 } });
  let n = 0;
  let maxLive = 0;
  for await (const x of flow) {
    assert.equal(x, n);
    n++;
    if (n % 5000 === 0) {
      const recs = [...flow.items()];
      const finished = recs.filter((r) => r.status === "done").length;
      assert.equal(finished, 100, `finished records after ${n}`);
      const live = recs.length - finished;
      maxLive = Math.max(maxLive, live);
      assert.ok(live <= BOUND, `live ${live} > ${BOUND} after ${n}`);
    }
    if (n === 50_000) break;
  }
  assert.equal(n, 50_000);
  assert.ok(maxLive > 0);
  // Leaving the loop cancels the rest: they are finished now, and at most
  // `keep` of them are kept.
  const after = [...flow.items()];
  assert.ok(after.length <= 100, `${after.length} records after the end`);
  assert.equal(
    after.filter((r) => r.status === "running" || r.status === "queued")
      .length,
    0,
  );
});
