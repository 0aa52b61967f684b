// map(fn, { key }): per-key order (issue 23 item 1).
import assert from "node:assert/strict";
import { map, pipeline, PipelineError } from "../mod.ts";
import { Gates, ticks } from "./_helpers.ts";

interface Update {
  account: string;
  n: number;
}
const u = (account: string, n: number): Update => ({ account, n });
const name = (x: Update) => `${x.account}${x.n}`;

Deno.test("map() with key never overlaps calls of one key and runs them in input order", async () => {
  const gates = new Gates<string>();
  const running = new Set<string>();
  const overlaps: string[] = [];
  const done: string[] = [];
  const flow = pipeline(map(async (x: Update) => {
    for (const r of running) if (r[0] === x.account) overlaps.push(name(x));
    running.add(name(x));
    await gates.wait(name(x));
    running.delete(name(x));
    done.push(name(x));
    return name(x);
  }, { concurrency: 4, key: (x) => x.account })).run([
    u("a", 1),
    u("b", 1),
    u("a", 2),
    u("a", 3),
    u("b", 2),
  ]);
  const out = flow.collect();
  await ticks();
  assert.deepEqual(gates.started, ["a1", "b1"], "one call per key");
  gates.open("a1");
  await ticks();
  assert.deepEqual(gates.started, ["a1", "b1", "a2"]);
  gates.open("b1");
  gates.open("a2");
  await ticks();
  gates.open("b2");
  gates.open("a3");
  assert.deepEqual(await out, ["a1", "b1", "a2", "a3", "b2"]);
  assert.deepEqual(overlaps, []);
  assert.deepEqual(done.filter((x) => x[0] === "a"), ["a1", "a2", "a3"]);
});

Deno.test("map() with key: items waiting for their key hold no worker slot", async () => {
  const gates = new Gates<string>();
  const flow = pipeline(map(async (x: Update) => {
    await gates.wait(name(x));
    return name(x);
  }, { concurrency: 2, key: (x) => x.account })).run([
    u("a", 1),
    u("a", 2),
    u("a", 3),
    u("b", 1),
    u("c", 1),
  ]);
  const out = flow.collect();
  await ticks();
  // a2 and a3 wait for "a" without a slot: b1 takes the second slot.
  assert.deepEqual(gates.started, ["a1", "b1"]);
  const stage = flow.stats().stages[0];
  assert.equal(stage.busy, 2);
  assert.equal(stage.queued, 3, "a2, a3 wait for their key; c1 for a slot");
  gates.open("b1");
  await ticks();
  assert.deepEqual(gates.started, ["a1", "b1", "c1"]);
  gates.openAll();
  gates.open("a2");
  gates.open("a3");
  assert.deepEqual(await out, ["a1", "a2", "a3", "b1", "c1"]);
});

Deno.test("map() with key keeps the read-ahead bound when one key holds everything", async () => {
  let read = 0;
  function* source() {
    for (let n = 1;; n++) {
      read++;
      yield u("hot", n);
    }
  }
  const gates = new Gates<number>();
  const flow = pipeline(
    map((x: Update) => gates.wait(x.n).then(() => x.n), {
      concurrency: 4,
      key: (x) => x.account,
    }),
  ).run(source(), { bufferSize: 8 });
  const it = flow[Symbol.asyncIterator]();
  const first = it.next();
  await ticks();
  assert.deepEqual(gates.started, [1]);
  assert.ok(read <= 8 + 4, `read ${read}: bufferSize + concurrency at most`);
  gates.open(1);
  assert.equal((await first).value, 1);
  const stopped = flow.abort();
  gates.openAll(); // the running call returns; the run then settles
  await stopped;
});

Deno.test("map() with key: a retrying item keeps its key through its backoffs", async () => {
  const started: string[] = [];
  let failed = false;
  const flow = pipeline(map(async (x: Update) => {
    started.push(name(x));
    await ticks(1);
    if (name(x) === "a1" && !failed) {
      failed = true;
      throw new Error("flaky");
    }
    return name(x);
  }, {
    concurrency: 3,
    key: (x) => x.account,
    retry: { attempts: 2, delayMs: 5, jitter: false },
  })).run([u("a", 1), u("a", 2), u("b", 1)]);
  assert.deepEqual(await flow.collect(), ["a1", "a2", "b1"]);
  assert.deepEqual(started.filter((x) => x[0] === "a"), ["a1", "a1", "a2"]);
});

Deno.test("map() with key: an item skipped by onError lets the next one of its key go", async () => {
  const flow = pipeline(map((x: Update) => {
    if (name(x) === "a1") throw new Error("bad a1");
    return name(x);
  }, { concurrency: 2, key: (x) => x.account, onError: "skip" })).run([
    u("a", 1),
    u("a", 2),
    u("b", 1),
  ]);
  assert.deepEqual(await flow.collect(), ["a2", "b1"]);
  assert.deepEqual(flow.failures.map((f) => f.index), [0]);
});

Deno.test("map() with key: a filtered item lets the next one of its key go", async () => {
  const { filter } = await import("../mod.ts");
  const flow = pipeline(
    filter((x: Update) => x.n !== 1, { key: (x) => x.account }),
  ).run([u("a", 1), u("a", 2), u("a", 3)]);
  assert.deepEqual((await flow.collect()).map(name), ["a2", "a3"]);
});

Deno.test("map() with key: a key function that throws fails the run with a PipelineError", async () => {
  const boom = new Error("no key");
  const flow = pipeline(map((x: Update) => x, {
    name: "apply",
    key: (x) => {
      if (x.n === 2) throw boom;
      return x.account;
    },
  })).run([u("a", 1), u("a", 2)]);
  const error = await flow.collect().then(() => undefined, (e) => e);
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "apply");
  assert.equal(error.index, 1);
  assert.equal(error.cause, boom);
});

Deno.test("map() refuses a key that is not a function", () => {
  assert.throws(() => map((x: number) => x, { key: "account" as never }), {
    name: "TypeError",
    message: "'key' must be a function: current value is \"account\"",
  });
});

Deno.test("map() key is typed by the stage's items (type-checked)", () => {
  map((x: Update) => x.n, { key: (x) => x.account });
  // @ts-expect-error: 'owner' is not a field of Update
  map((x: Update) => x.n, { key: (x) => x.owner });
});

Deno.test("map() with key: a listener that stops the run as the next item of a key starts leaves every item counted once", async () => {
  for (const fail of [false, true]) { // a1 passed on, or skipped
    const flow = pipeline(map(async (x: Update) => {
      await ticks(1);
      if (fail && name(x) === "a1") throw new Error("bad a1");
      return name(x);
    }, { key: (x) => x.account, onError: "skip", concurrency: 2 })).run([
      u("a", 1),
      u("a", 2),
    ]);
    flow.addEventListener("started", (e) => {
      if (e.detail.index === 1) void flow.abort(); // a2 starts as a1 leaves
    });
    await flow.collect().catch(() => {});
    const s = flow.stats();
    assert.equal(s.inFlight, 0, `inFlight (a1 ${fail ? "skipped" : "passed"})`);
    assert.equal(
      s.itemsIn,
      s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
    );
  }
});
