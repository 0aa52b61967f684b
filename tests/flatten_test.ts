import assert from "node:assert/strict";
import {
  batch,
  flatten,
  map,
  Pipeline,
  pipeline,
  PipelineError,
  type Stage,
} from "../mod.ts";
import {
  deferred,
  Gates,
  prng,
  rangeInclusive,
  sleep,
  until,
} from "./_helpers.ts";

Deno.test("flatten() emits the elements of arrays in order", async () => {
  const p = pipeline(flatten<number>());
  assert.deepEqual(
    await p.run([[1, 2, 3], [4], [5, 6]]).collect(),
    rangeInclusive(1, 6),
  );
});

Deno.test("flatten() expands any iterable: Set, generator, typed array", async () => {
  function* gen(from: number, to: number) {
    for (let i = from; i <= to; i++) yield i;
  }
  const p = pipeline(flatten<number>());
  const items: Iterable<number>[] = [
    new Set([1, 2]),
    gen(3, 5),
    new Uint8Array([6, 7]),
    [8],
    new Map([[9, 0]]).keys(),
  ];
  assert.deepEqual(await p.run(items).collect(), rangeInclusive(1, 9));
});

Deno.test("flatten() keeps the elements of one item together in completion order", async () => {
  const p = pipeline(flatten<number>());
  assert.deepEqual(
    await p.run([[1, 2, 3], [4, 5]], { order: "completion" }).collect(),
    rangeInclusive(1, 5),
  );
});

Deno.test("flatten() emits nothing for an empty array", async () => {
  const p = pipeline(flatten<number>());
  assert.deepEqual(await p.run([[], [1], [], [], [2, 3], []]).collect(), [
    1,
    2,
    3,
  ]);
  assert.deepEqual(await p.run([[], []]).collect(), []);
  assert.deepEqual(await p.run([[], new Set<number>()]).collect(), []);
});

Deno.test("flatten() of an empty array does not block later items in input order", async () => {
  // Item 1 becomes [] and item 3 is held until 1..2's elements are out: an
  // empty item that held back its successors would hang here.
  const gates = new Gates();
  const p = pipeline(
    map(async (x: number) => {
      if (x === 3) await gates.wait(x);
      return x === 1 ? [] : [x * 10, x * 10 + 1];
    }, { concurrency: 4 }),
    flatten<number>(),
  );
  const received: number[] = [];
  const flow = p.run([0, 1, 2, 3]);
  const done = (async () => {
    for await (const x of flow) received.push(x);
  })();
  await until(() => received.length === 4, "0's and 2's elements");
  assert.deepEqual(received, [0, 1, 20, 21]);
  gates.open(3);
  await done;
  assert.deepEqual(received, [0, 1, 20, 21, 30, 31]);
});

Deno.test("flatten() of an empty array decided last still lets the run finish", async () => {
  const p = pipeline(
    map(async (x: number) => {
      await sleep(x === 0 ? 30 : 1);
      return x === 0 ? [] : [x];
    }, { concurrency: 3 }),
    flatten<number>(),
  );
  assert.deepEqual(await p.run([0, 1, 2]).collect(), [1, 2]);
  assert.deepEqual(
    await p.run([0, 1, 2], { order: "completion" }).collect(),
    [1, 2],
  );
});

Deno.test("flatten() keeps input order through batch -> map -> flatten -> map with random delays", async () => {
  for (let seed = 1; seed <= 5; seed++) {
    const rand = prng(seed * 101);
    const delay = () => sleep(Math.floor(rand() * 6));
    const p = pipeline(
      map(async (x: number) => {
        await delay();
        return x;
      }, { concurrency: 4 }),
      batch<number>({ maxSize: 7, maxWaitMs: 3 }),
      map(async (xs: number[]) => {
        await delay();
        return xs.map((x) => x * 2);
      }, { concurrency: 3 }),
      flatten<number>(),
      map(async (x: number) => {
        await delay();
        return x + 1;
      }, { concurrency: 5 }),
    );
    const expected = rangeInclusive(1, 60).map((x) => x * 2 + 1);
    assert.deepEqual(await p.run(rangeInclusive(1, 60)).collect(), expected);
    const unordered = await p.run(rangeInclusive(1, 60), {
      order: "completion",
    })
      .collect();
    assert.deepEqual(unordered.sort((a, b) => a - b), expected);
  }
});

Deno.test("flatten() then batch() regroups the elements in input order", async () => {
  const rand = prng(9);
  const p = pipeline(
    map(async (n: number) => {
      await sleep(Math.floor(rand() * 5));
      return rangeInclusive(1, n).map((i) => `${n}.${i}`);
    }, { concurrency: 4 }),
    flatten<string>(),
    batch<string>({ maxSize: 3 }),
  );
  const expected = [0, 2, 1, 3].flatMap((n) =>
    rangeInclusive(1, n).map((i) => `${n}.${i}`)
  );
  const batches = await p.run([0, 2, 1, 3]).collect();
  assert.deepEqual(batches.flat(), expected);
  assert.deepEqual(batches.map((b) => b.length), [3, 3]);
});

Deno.test("flatten() rejects the run with a PipelineError when an item is not iterable", async () => {
  for (const bad of [5, null, undefined, { length: 2 }]) {
    const p = pipeline(
      map((x: unknown) => x as Iterable<number>),
      flatten<number>(),
    );
    const error = await p.run([[1], bad, [2]] as unknown[]).collect()
      .then(() => undefined, (e) => e);
    assert.ok(error instanceof PipelineError, `${bad}: ${error}`);
    assert.equal(error.stage, "flatten#2");
    assert.equal(error.index, 1);
    assert.equal(error.itemId, 1);
    assert.equal(error.item, bad);
    assert.ok(error.cause instanceof TypeError, `${error.cause}`);
  }
});

Deno.test("flatten() names a custom stage in its error", async () => {
  const p = pipeline(flatten<number>({ name: "explode" }));
  const error = await p.run([7] as unknown as number[][]).collect().then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "explode");
  assert.ok(error.cause instanceof TypeError);
});

Deno.test("flatten() rejects the run with a PipelineError when iterating an item throws", async () => {
  const boom = new Error("iteration failed");
  function* broken() {
    yield 1;
    throw boom;
  }
  const p = pipeline(flatten<number>());
  const error = await p.run([[0], broken()]).collect().then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof PipelineError);
  assert.equal(error.index, 1);
  assert.equal(error.cause, boom);
});

Deno.test("flatten() counts an item flattened to nothing as filtered in stats()", async () => {
  const flow = pipeline(flatten<number>()).run([[1], [], [2, 3], [], []]);
  assert.deepEqual(await flow.collect(), [1, 2, 3]);
  const stats = flow.stats();
  assert.equal(stats.itemsIn, 5);
  assert.equal(stats.filtered, 3);
  assert.equal(stats.done, true);
  assert.equal(stats.stages[0].kind, "flatten");
  assert.equal(stats.stages[0].name, "flatten#1");
});

Deno.test("flatten() rejects options that are not an object, and a bad name", () => {
  assert.throws(() => flatten(3 as unknown as { name: string }), TypeError);
  assert.throws(() => flatten({ name: "" }), TypeError);
  assert.equal(flatten().kind, "flatten");
});

Deno.test("batch() -> flatten(): each element gets its own ctx.index and itemId back, for a first-stage batch and a later one, in both orders", async () => {
  const upTo = {
    "first-stage batch": [] as Stage<string, string>[],
    "batch after a map": [
      map(async (s: string, ctx) => {
        await sleep(ctx.index % 2 === 0 ? 2 : 0);
        return s;
      }, { concurrency: 4 }),
    ],
  };
  for (const [name, before] of Object.entries(upTo)) {
    for (const order of ["input", "completion"] as const) {
      for (const id of [undefined, (s: string) => `id-${s}`]) {
        const seen: [string, number, unknown][] = [];
        const flow = new Pipeline<string, string>([
          ...before,
          batch<string>({ maxSize: 3 }),
          map((xs: string[]) => xs.map((s) => s.toUpperCase())),
          flatten<string>(),
          map((s: string, ctx) => {
            seen.push([s, ctx.index, ctx.itemId]);
            return s;
          }),
        ] as Stage<never, unknown>[]).run(["a", "b", "c", "d", "e"], {
          order,
          id,
        });
        await flow.collect();
        const what = `${name}, ${order} order, ${id ? "custom" : "no"} id`;
        seen.sort((x, y) => x[1] - y[1]);
        assert.deepEqual(
          seen,
          ["A", "B", "C", "D", "E"].map((s, i) => [
            s,
            i,
            id ? `id-${s.toLowerCase()}` : i,
          ]),
          what,
        );
      }
    }
  }
});

Deno.test("batch() -> flatten(): a failure of an element is recorded with that element's own index and id", async () => {
  const flow = pipeline(
    batch<number>({ maxSize: 4 }),
    flatten<number>(),
    map((x: number) => {
      if (x === 12) throw new Error("bad");
      return x;
    }, { onError: "skip" }),
  ).run([10, 11, 12, 13], { id: (x) => `#${x}` });
  assert.deepEqual(await flow.collect(), [10, 11, 13]);
  assert.equal(flow.failures.length, 1);
  assert.equal(flow.failures[0].index, 2);
  assert.equal(flow.failures[0].itemId, "#12");
});

Deno.test("batch() -> batch() -> flatten() -> flatten(): inner batches and then items get their own index back", async () => {
  const seen: [number, number][] = [];
  const inner: [number[], number][] = [];
  await pipeline(
    batch<number>({ maxSize: 2 }),
    batch<number[]>({ maxSize: 2 }),
    flatten<number[]>(),
    map((xs: number[], ctx) => {
      inner.push([xs, ctx.index]);
      return xs;
    }),
    flatten<number>(),
    map((x: number, ctx) => {
      seen.push([x, ctx.index]);
      return x;
    }),
  ).run([0, 1, 2, 3, 4]).collect();
  assert.deepEqual(inner, [[[0, 1], 0], [[2, 3], 2], [[4], 4]]);
  assert.deepEqual(seen, [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
});

Deno.test("flatten() of a one-to-many fan-out: every element carries its parent's index and id", async () => {
  const seen: [string, number, unknown][] = [];
  await pipeline(
    map((s: string) => [s + "1", s + "2", s + "3"]),
    flatten<string>(),
    map((s: string, ctx) => {
      seen.push([s, ctx.index, ctx.itemId]);
      return s;
    }),
  ).run(["a", "b"], { id: (s) => s }).collect();
  assert.deepEqual(seen, [
    ["a1", 0, "a"],
    ["a2", 0, "a"],
    ["a3", 0, "a"],
    ["b1", 1, "b"],
    ["b2", 1, "b"],
    ["b3", 1, "b"],
  ]);
  // A batch whose array changed length before the flatten is a fan-out too.
  const indices: number[] = [];
  await pipeline(
    batch<number>({ maxSize: 2 }),
    map((xs: number[]) => [...xs, ...xs]),
    flatten<number>(),
    map((x: number, ctx) => {
      indices.push(ctx.index);
      return x;
    }),
  ).run([5, 6]).collect();
  assert.deepEqual(indices, [0, 0, 0, 0]);
});

// ---- async iterables ---------------------------------------------------------

Deno.test("flatten() reads an async generator's elements and keeps its item's place in input order", async () => {
  const flow = pipeline(
    map(async function* (n: number) {
      for (let i = 0; i < n; i++) {
        await sleep(n === 3 ? 5 : 0); // the first item's elements come last
        yield `${n}.${i}`;
      }
    }, { concurrency: 3 }),
    flatten<string>(),
  ).run([3, 1, 0, 2]);
  assert.deepEqual(await flow.collect(), [
    "3.0",
    "3.1",
    "3.2",
    "1.0",
    "2.0",
    "2.1",
  ]);
  const s = flow.stats();
  assert.equal(s.itemsIn, 4);
  assert.equal(s.itemsOut, 3); // three items gave elements; weights balance
  assert.equal(s.filtered, 1); // the one with none
  assert.equal(s.inFlight, 0);
});

Deno.test("flatten() fails the run with a PipelineError when an async generator throws", async () => {
  const boom = new Error("page 2 failed");
  const flow = pipeline(
    map(async function* (site: string) {
      yield `${site}/1`;
      await sleep(0);
      throw boom;
    }),
    flatten<string>({ name: "pages" }),
  ).run(["a"]);
  const error = await flow.collect().then(() => undefined, (e) => e);
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "pages");
  assert.equal(error.cause, boom);
});

Deno.test("flatten() closes the async generators being read when the run stops", async () => {
  const closed: string[] = [];
  const gate = deferred<void>();
  const flow = pipeline(
    map(async function* (site: string) {
      try {
        yield `${site}/1`;
        await gate.promise; // never resolved before the abort
        yield `${site}/2`;
      } finally {
        closed.push(site);
      }
    }, { concurrency: 2 }),
    flatten<string>(),
  ).run(["a", "b"]);
  const out = flow.collect().catch((e) => e);
  await sleep(5);
  await flow.abort();
  gate.resolve(); // the pending next() settles, then return() runs
  assert.equal((await out).name, "AbortError");
  await sleep(5);
  assert.deepEqual(closed.sort(), ["a", "b"]);
});
