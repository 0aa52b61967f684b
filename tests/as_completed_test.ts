import assert from "node:assert/strict";
import { asCompleted } from "../mod.ts";
import { collect, deferred, tick } from "./_helpers.ts";

Deno.test("asCompleted() yields values in the order they settle", async () => {
  const a = deferred<string>();
  const b = deferred<string>();
  const c = deferred<string>();
  const out: string[] = [];
  const done = (async () => {
    for await (const v of asCompleted([a.promise, b.promise, c.promise])) {
      out.push(v);
    }
  })();
  c.resolve("c");
  await tick();
  assert.deepEqual(out, ["c"]);
  a.resolve("a");
  b.resolve("b");
  await done;
  assert.deepEqual(out, ["c", "a", "b"]);
});

Deno.test("asCompleted() throws a rejection at its turn, after the values settled before it", async () => {
  const slow = deferred<number>();
  const failing = deferred<number>();
  const out: number[] = [];
  const done = (async () => {
    for await (const v of asCompleted([slow.promise, 1, failing.promise])) {
      out.push(v);
    }
  })();
  await tick();
  failing.reject(new Error("boom"));
  await assert.rejects(done, /boom/);
  assert.deepEqual(out, [1]);
  // The slow one's later rejection is dropped by an inert handler, not
  // reported as unhandled (the test would fail).
  slow.reject(new Error("late"));
  await tick();
});

Deno.test("asCompleted() leaves no unhandled rejection when the loop is left early", async () => {
  const rest = Array.from({ length: 5 }, () => deferred<number>());
  for await (const v of asCompleted([0, ...rest.map((d) => d.promise)])) {
    assert.equal(v, 0);
    break;
  }
  for (const d of rest) d.reject(new Error("not consumed"));
  await tick();
  await tick();
});

Deno.test("asCompleted() handles rejections that happen before the loop starts", async () => {
  const it = asCompleted([
    Promise.reject(new Error("early")),
    Promise.resolve(2),
  ]);
  await tick(); // the rejection is already handled: no unhandled rejection
  await assert.rejects(collect(it), /early/);
});

Deno.test("asCompleted() reads the iterable at call time: generators, sets, thenables and plain values", async () => {
  let pulled = 0;
  function* gen() {
    for (let i = 0; i < 3; i++) {
      pulled++;
      yield Promise.resolve(i);
    }
  }
  const it = asCompleted(gen());
  assert.equal(pulled, 3);
  assert.deepEqual((await collect(it)).sort(), [0, 1, 2]);

  const thenable: PromiseLike<string> = {
    then(onFulfilled) {
      return Promise.resolve("thenable").then(onFulfilled);
    },
  };
  assert.deepEqual(
    (await collect(asCompleted(
      new Set<string | PromiseLike<string>>([
        "plain",
        thenable,
      ]),
    ))).sort(),
    ["plain", "thenable"],
  );
});

Deno.test("asCompleted() of an empty iterable ends at once", async () => {
  assert.deepEqual(await collect(asCompleted([])), []);
});

Deno.test("asCompleted() throws a TypeError at the call site for a non-iterable", () => {
  assert.throws(
    () => asCompleted(42 as unknown as number[]),
    {
      name: "TypeError",
      message: "'values' must be an Iterable: current value is 42",
    },
  );
  assert.throws(
    () => asCompleted(undefined as unknown as number[]),
    TypeError,
  );
});

Deno.test("asCompleted() works with a pool's promises", async () => {
  const { Pool } = await import("../mod.ts");
  await using pool = new Pool({ concurrency: 3 });
  const gates = [deferred(), deferred(), deferred()];
  const tasks = gates.map((g, i) =>
    pool.submit(async () => (await g.promise, i))
  );
  gates[2].resolve();
  gates[0].resolve();
  gates[1].resolve();
  assert.deepEqual(await collect(asCompleted(tasks)), [2, 0, 1]);
});

Deno.test("asCompleted() of promises of different types yields their union (type-checked)", async () => {
  const n: Promise<number> = Promise.resolve(1);
  const s: Promise<string> = new Promise((r) => setTimeout(() => r("a"), 1));
  const plain = true;
  const out: (number | string | boolean)[] = [];
  for await (const v of asCompleted([n, s, plain])) {
    const typed: number | string | boolean = v;
    // @ts-expect-error: the union is not narrowed to one of its members
    const _narrow: number = v;
    out.push(typed);
  }
  assert.deepEqual(out, [1, true, "a"]);
});
