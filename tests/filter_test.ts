import assert from "node:assert/strict";
import {
  filter,
  map,
  pipeline,
  PipelineError,
  type TaskContext,
} from "../mod.ts";
import {
  Gates,
  Gauge,
  prng,
  rangeInclusive,
  sleep,
  tick,
  until,
} from "./_helpers.ts";

Deno.test("filter() keeps the items an async predicate accepts", async () => {
  const p = pipeline(filter(async (x: number) => {
    await sleep(1);
    return x % 2 === 0;
  }, { concurrency: 3 }));
  assert.deepEqual(await p.run(rangeInclusive(1, 10)).collect(), [
    2,
    4,
    6,
    8,
    10,
  ]);
});

Deno.test("filter() keeps the items a sync predicate accepts", async () => {
  const p = pipeline(filter((x: number) => x > 3));
  assert.deepEqual(await p.run(rangeInclusive(1, 6)).collect(), [4, 5, 6]);
});

Deno.test("filter() keeps truthy and drops falsy answers", async () => {
  const answers: unknown[] = [
    1,
    0,
    "yes",
    "",
    {},
    null,
    undefined,
    NaN,
    [],
    0n,
  ];
  const p = pipeline(filter((i: number) => answers[i]));
  assert.deepEqual(
    await p.run(rangeInclusive(0, answers.length - 1)).collect(),
    [
      0,
      2,
      4,
      8,
    ],
  );
});

Deno.test("filter() keeps input order with out-of-order predicates", async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const rand = prng(seed);
    const p = pipeline(filter(async (x: number) => {
      await sleep(Math.floor(rand() * 8));
      return x % 3 !== 0;
    }, { concurrency: 5 }));
    assert.deepEqual(
      await p.run(rangeInclusive(1, 30)).collect(),
      rangeInclusive(1, 30).filter((x) => x % 3 !== 0),
    );
  }
});

Deno.test("filter() yields in completion order with order: 'completion'", async () => {
  const gates = new Gates();
  const p = pipeline(filter(async (x: number) => {
    await gates.wait(x);
    return x !== 2;
  }, { concurrency: 4 }));
  const out = p.run([0, 1, 2, 3], { order: "completion" }).collect();
  await until(() => gates.started.length === 4, "4 predicates");
  for (const x of [3, 2, 1, 0]) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [3, 1, 0]);
});

Deno.test("filter() dropped items do not hold back later items in input order", async () => {
  // 1 and 2 are dropped; 4 is held until 0 and 3 are out.
  const gates = new Gates();
  const p = pipeline(filter(async (x: number) => {
    if (x === 4) await gates.wait(x);
    return x !== 1 && x !== 2;
  }, { concurrency: 5 }));
  const received: number[] = [];
  const flow = p.run([0, 1, 2, 3, 4]);
  const done = (async () => {
    for await (const x of flow) received.push(x);
  })();
  await until(() => received.length === 2, "0 and 3 before 4 is decided");
  assert.deepEqual(received, [0, 3]);
  gates.open(4);
  await done;
  assert.deepEqual(received, [0, 3, 4]);
});

Deno.test("filter() dropping the slowest item releases the items after it", async () => {
  const gates = new Gates();
  const p = pipeline(filter(async (x: number) => {
    if (x === 2) await gates.wait(x);
    return x !== 2;
  }, { concurrency: 5 }));
  const received: number[] = [];
  const flow = p.run([0, 1, 2, 3, 4]);
  const done = (async () => {
    for await (const x of flow) received.push(x);
  })();
  await until(() => received.length === 2, "0 and 1");
  await sleep(5);
  assert.deepEqual(received, [0, 1], "3 and 4 wait for 2");
  gates.open(2);
  await done;
  assert.deepEqual(received, [0, 1, 3, 4]);
});

Deno.test("filter() with a type guard narrows the item type", async () => {
  const isNumber = (x: string | number): x is number => typeof x === "number";
  const p = pipeline(
    filter(isNumber),
    map((n: number) => n.toFixed(1)),
  );
  const out: string[] = await p.run([1, "a", 2, "b"]).collect();
  assert.deepEqual(out, ["1.0", "2.0"]);

  const numbers = pipeline(filter(isNumber));
  const narrowed: number[] = await numbers.run([1, "x"]).collect();
  assert.deepEqual(narrowed, [1]);
  // @ts-expect-error: the output is number[], not string[]
  const wrong: string[] = await numbers.run([1]).collect();
  assert.deepEqual(wrong, [1]);

  // Without a guard, the type is unchanged.
  const same = pipeline(filter((x: string | number) => x !== "a"));
  const kept: (string | number)[] = await same.run([1, "a", "b"]).collect();
  assert.deepEqual(kept, [1, "b"]);
});

for (const limit of [1, 3]) {
  Deno.test(`filter() with concurrency ${limit} keeps exactly that many predicates in flight`, async () => {
    const gates = new Gates();
    const gauge = new Gauge();
    const p = pipeline(filter(async (x: number) => {
      gauge.enter();
      await gates.wait(x);
      gauge.leave();
      return x % 2 === 0;
    }, { concurrency: limit }));
    const out = p.run(rangeInclusive(1, 12)).collect();
    await until(() => gates.started.length === limit, `${limit} predicates`);
    await sleep(5);
    assert.equal(gates.started.length, limit);
    gates.open(gates.started[0]);
    await until(() => gates.started.length === limit + 1, "one more");
    await sleep(5);
    assert.equal(gates.started.length, limit + 1);
    for (const x of rangeInclusive(1, 12)) gates.open(x);
    assert.deepEqual(await out, [2, 4, 6, 8, 10, 12]);
    assert.equal(gauge.peak, limit);
  });
}

Deno.test("filter() runs one predicate at a time by default", async () => {
  const gauge = new Gauge();
  const p = pipeline(filter(async (_: number) => {
    gauge.enter();
    await sleep(1);
    gauge.leave();
    return true;
  }));
  assert.deepEqual(
    await p.run(rangeInclusive(1, 6)).collect(),
    rangeInclusive(1, 6),
  );
  assert.equal(gauge.peak, 1);
});

Deno.test("filter() counts dropped items in stats().filtered", async () => {
  const flow = pipeline(filter(async (x: number) => {
    await sleep(1);
    return x % 3 !== 0;
  }, { concurrency: 4 })).run(rangeInclusive(1, 10));
  assert.deepEqual(await flow.collect(), [1, 2, 4, 5, 7, 8, 10]);
  const stats = flow.stats();
  assert.equal(stats.itemsIn, 10);
  assert.equal(stats.itemsOut, 7);
  assert.equal(stats.filtered, 3);
  assert.equal(stats.inFlight, 0);
  assert.equal(stats.done, true);
  assert.equal(stats.stages[0].kind, "filter");
  assert.equal(stats.stages[0].completed, 10);
});

Deno.test("filter() passes ctx with index, workerId and its stage name", async () => {
  const seen: TaskContext[] = [];
  const context = { k: 1 };
  const p = pipeline(
    map((x: number) => x),
    filter((x: number, ctx) => {
      seen.push(ctx);
      return x > 0;
    }),
    filter((_: number) => true, { name: "keep" }),
  );
  await p.run([1, 2], { context }).collect();
  assert.deepEqual(seen.map((c) => [c.stage, c.index, c.itemId, c.workerId]), [
    ["filter#2", 0, 0, 0],
    ["filter#2", 1, 1, 0],
  ]);
  assert.equal(seen[0].context, context);
  assert.equal(seen[0].attempt, 1);
  assert.equal(p.names[2], "keep");
});

Deno.test("filter() rejects the run with a PipelineError when the predicate throws", async () => {
  const boom = new Error("predicate failed");
  const p = pipeline(filter((x: number) => {
    if (x === 3) throw boom;
    return true;
  }));
  const error = await p.run([1, 2, 3, 4]).collect().then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "filter#1");
  assert.equal(error.index, 2);
  assert.equal(error.item, 3);
  assert.equal(error.cause, boom);
});

Deno.test("filter() validates its predicate and options", () => {
  for (const predicate of [undefined, 1, "x"]) {
    assert.throws(
      () => filter(predicate as unknown as (x: number) => boolean),
      { name: "TypeError", message: /'predicate'/ },
    );
  }
  for (const concurrency of [0, -1, 2.5, NaN]) {
    assert.throws(
      () => filter((x: number) => x > 0, { concurrency }),
      { name: "RangeError", message: /'concurrency'/ },
    );
  }
  assert.throws(
    () =>
      filter((x: number) => x > 0, { concurrency: "2" as unknown as number }),
    { name: "TypeError", message: /'concurrency'/ },
  );
});
