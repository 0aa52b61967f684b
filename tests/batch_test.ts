import assert from "node:assert/strict";
import {
  batch,
  type BatchOptions,
  filter,
  flatten,
  map,
  pipeline,
  PipelineError,
} from "../mod.ts";
import { specOf } from "../lib/stage.ts";
import {
  FakeTime,
  Gates,
  openStream,
  prng,
  rangeInclusive,
  sleep,
  tick,
  until,
} from "./_helpers.ts";

/**
 * Runs `consume` on fake time to its end: `log` gets each batch and the ms at
 * which it came, the source logs its own steps in between.
 */
async function onFakeTime(
  consume: (log: string[], time: FakeTime) => Promise<void>,
): Promise<string[]> {
  using time = new FakeTime();
  const log: string[] = [];
  const done = consume(log, time);
  await time.runAllAsync();
  await done;
  return log;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

Deno.test("batch() runs the conveyor example x*2 | batch(3) sum | +10 to [22, 40, 24]", async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const rand = prng(seed);
    const p = pipeline(
      map(async (x: number) => {
        await sleep(Math.floor(rand() * 15));
        return x * 2;
      }, { concurrency: 4 }),
      batch<number>({ maxSize: 3 }),
      map((xs: number[]) => sum(xs)),
      map((x: number) => x + 10),
    );
    assert.deepEqual(
      await p.run(rangeInclusive(1, 7)).collect(),
      [22, 40, 24],
      `seed ${seed}`,
    );
  }
});

Deno.test("batch() runs the conveyor example to [22, 40, 24] when earlier items finish last", async () => {
  const finished: number[] = [];
  const p = pipeline(
    map(async (x: number) => {
      await sleep((8 - x) * 8);
      finished.push(x);
      return x * 2;
    }, { concurrency: 4 }),
    batch<number>({ maxSize: 3 }),
    map((xs: number[]) => sum(xs)),
    map((x: number) => x + 10),
  );
  assert.deepEqual(await p.run(rangeInclusive(1, 7)).collect(), [22, 40, 24]);
  assert.notDeepEqual(
    finished,
    rangeInclusive(1, 7),
    "completion was out of order",
  );
});

Deno.test("batch() in input order groups consecutive input items whatever the completion order", async () => {
  const gates = new Gates();
  const seen: number[][] = [];
  const p = pipeline(
    map(async (x: number) => {
      await gates.wait(x);
      return x;
    }, { concurrency: 5 }),
    batch<number>({ maxSize: 2 }),
    map((xs: number[]) => {
      seen.push(xs);
      return xs;
    }),
  );
  const out = p.run([1, 2, 3, 4, 5]).collect();
  await until(() => gates.started.length === 5, "5 calls");
  for (const x of [5, 4, 3, 2, 1]) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [[1, 2], [3, 4], [5]]);
  // The stage after the batch saw the same batches (in whatever order).
  assert.deepEqual(
    [...seen].sort((a, b) => a[0] - b[0]),
    [[1, 2], [3, 4], [5]],
  );
});

Deno.test("batch() in input order with random delays always holds consecutive items", async () => {
  for (let seed = 1; seed <= 5; seed++) {
    const rand = prng(seed * 31);
    const p = pipeline(
      map(async (x: number) => {
        await sleep(Math.floor(rand() * 8));
        return x;
      }, { concurrency: 6 }),
      batch<number>({ maxSize: 4 }),
    );
    const expected: number[][] = [];
    for (let i = 1; i <= 30; i += 4) {
      expected.push(rangeInclusive(i, Math.min(i + 3, 30)));
    }
    assert.deepEqual(await p.run(rangeInclusive(1, 30)).collect(), expected);
  }
});

Deno.test("batch() in completion order forms batches in arrival order", async () => {
  const gates = new Gates();
  const p = pipeline(
    map(async (x: number) => {
      await gates.wait(x);
      return x;
    }, { concurrency: 5 }),
    batch<number>({ maxSize: 2 }),
  );
  const out = p.run([1, 2, 3, 4, 5], { order: "completion" }).collect();
  await until(() => gates.started.length === 5, "5 calls");
  for (const x of [4, 2, 5, 1, 3]) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [[4, 2], [5, 1], [3]]);
});

Deno.test("batch() emits a full batch at once, without waiting for the next item", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield* [1, 2, 3];
      await sleep(100);
      log.push("source resumed");
      yield 4;
    }
    // A long maxWaitMs must not delay a full batch (and its timer must go).
    const p = pipeline(batch<number>({ maxSize: 3, maxWaitMs: 10_000 }));
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, ["[1,2,3] at 0", "source resumed", "[4] at 100"]);
});

Deno.test("batch() never emits an empty batch", async () => {
  const p = pipeline(batch<number>({ maxSize: 3, maxWaitMs: 5 }));
  assert.deepEqual(await p.run([]).collect(), []);
  async function* slow() {
    await sleep(30);
    yield 1;
    await sleep(30);
  }
  assert.deepEqual(await p.run(slow()).collect(), [[1]]);
  // Everything filtered out before the batch: no batch at all.
  const none = pipeline(
    filter((_: number) => false),
    batch<number>({ maxSize: 2, maxWaitMs: 5 }),
  );
  assert.deepEqual(await none.run(rangeInclusive(1, 10)).collect(), []);
  // Random sizes and timings: every batch has 1..maxSize items.
  for (const order of ["input", "completion"] as const) {
    const rand = prng(order.length);
    const q = pipeline(
      map(async (x: number) => {
        await sleep(Math.floor(rand() * 6));
        return x;
      }, { concurrency: 3 }),
      batch<number>({ maxSize: 4, maxWaitMs: 3 }),
    );
    const batches = await q.run(rangeInclusive(1, 40), { order }).collect();
    for (const b of batches) assert.ok(b.length >= 1 && b.length <= 4);
    assert.deepEqual(
      batches.flat().sort((a, b) => a - b),
      rangeInclusive(1, 40),
    );
  }
});

Deno.test("batch() emits the remainder at the end of input", async () => {
  const p = pipeline(batch<number>({ maxSize: 3 }));
  assert.deepEqual(await p.run(rangeInclusive(1, 7)).collect(), [
    [1, 2, 3],
    [4, 5, 6],
    [7],
  ]);
  assert.deepEqual(await p.run(rangeInclusive(1, 6)).collect(), [[1, 2, 3], [
    4,
    5,
    6,
  ]]);
  assert.deepEqual(await p.run([1]).collect(), [[1]]);
  assert.deepEqual(
    await p.run(rangeInclusive(1, 7), { order: "completion" }).collect(),
    [[1, 2, 3], [4, 5, 6], [7]],
  );
});

Deno.test("batch() emits a remainder below minSize at the end of input", async () => {
  const p = pipeline(batch<number>({ maxSize: 5, minSize: 3, maxWaitMs: 5 }));
  assert.deepEqual(await p.run(rangeInclusive(1, 7)).collect(), [
    [1, 2, 3, 4, 5],
    [6, 7],
  ]);
  assert.deepEqual(await p.run([1]).collect(), [[1]]);
});

Deno.test("batch() emits the remainder of an async source that ends", async () => {
  async function* source() {
    for (const x of rangeInclusive(1, 5)) {
      await sleep(1);
      yield x;
    }
  }
  const p = pipeline(batch<number>({ maxSize: 2 }));
  assert.deepEqual(await p.run(source()).collect(), [[1, 2], [3, 4], [5]]);
});

Deno.test("batch() without maxWaitMs waits for a full batch however long the source pauses", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield 1;
      await sleep(60_000);
      log.push("source resumed");
      yield 2;
    }
    const p = pipeline(batch<number>({ maxSize: 2 }));
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, ["source resumed", "[1,2] at 60000"]);
});

Deno.test("batch() maxWaitMs flushes a partial batch while the source pauses", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield 1;
      yield 2;
      await sleep(200);
      log.push("source resumed");
      yield 3;
      yield 4;
    }
    const p = pipeline(batch<number>({ maxSize: 10, maxWaitMs: 30 }));
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  // [3,4] at the source's end, not at its own window's end.
  assert.deepEqual(log, ["[1,2] at 30", "source resumed", "[3,4] at 200"]);
});

Deno.test("batch() maxWaitMs is a hard bound from the first item, not reset by later items", async () => {
  // An item every 25 ms, a wait of 90 ms: a timer reset by each item would
  // never fire, and everything would come as one batch at the end. The hard
  // bound sends 1..4 (at 0..75 ms) at 90 ms, 5..8 (100..175) at 190 ms.
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      for (const x of rangeInclusive(1, 10)) {
        if (x > 1) await sleep(25);
        yield x;
      }
    }
    const p = pipeline(batch<number>({ maxSize: 100, maxWaitMs: 90 }));
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, [
    "[1,2,3,4] at 90",
    "[5,6,7,8] at 190",
    "[9,10] at 225",
  ]);
});

Deno.test("batch() maxWaitMs flushes a single item when minSize is 1", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield 1;
      await sleep(150);
      yield 2;
      yield 3;
    }
    const p = pipeline(batch<number>({ maxSize: 10, maxWaitMs: 20 }));
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, ["[1] at 20", "[2,3] at 150"]);
});

Deno.test("batch() minSize: a due batch waits for minSize items, then flushes at once", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield 1;
      await sleep(150); // the timer fires with 1 item < minSize: it waits
      yield 2; // minSize reached on a due batch: flush now, without 3
      yield 3;
      await sleep(150);
      log.push("source resumed");
      yield 4;
    }
    const p = pipeline(
      batch<number>({ maxSize: 10, minSize: 2, maxWaitMs: 20 }),
    );
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, ["[1,2] at 150", "source resumed", "[3,4] at 300"]);
});

Deno.test("batch() minSize does not delay a full batch", async () => {
  const log = await onFakeTime(async (log, time) => {
    const t0 = time.now;
    async function* source() {
      yield* [1, 2];
      await sleep(80);
      log.push("source resumed");
      yield 3;
    }
    const p = pipeline(
      batch<number>({ maxSize: 2, minSize: 2, maxWaitMs: 10 }),
    );
    for await (const xs of p.run(source())) {
      log.push(`${JSON.stringify(xs)} at ${time.now - t0}`);
    }
  });
  assert.deepEqual(log, ["[1,2] at 0", "source resumed", "[3] at 80"]);
});

Deno.test("batch() in input order times a partial batch and leaves later items for the next", async () => {
  // Item 2 is slow: [1] goes out on its timer; 2 then forms a batch with the
  // items after it, which were waiting behind it.
  const gates = new Gates();
  const p = pipeline(
    map(async (x: number) => {
      if (x === 2) await gates.wait(x);
      return x;
    }, { concurrency: 4 }),
    batch<number>({ maxSize: 10, maxWaitMs: 20 }),
  );
  const log: string[] = [];
  const flow = p.run([1, 2, 3, 4]);
  const done = (async () => {
    for await (const xs of flow) log.push(JSON.stringify(xs));
  })();
  await until(() => log.length === 1, "the timed batch");
  gates.open(2);
  await done;
  assert.deepEqual(log, ["[1]", "[2,3,4]"]);
});

Deno.test("batch() rejects a missing, zero, negative or fractional maxSize", () => {
  assert.throws(
    () => batch(undefined as unknown as BatchOptions),
    TypeError,
  );
  assert.throws(() => batch({} as BatchOptions), {
    name: "TypeError",
    message: /'maxSize'/,
  });
  for (const maxSize of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(
      () => batch({ maxSize }),
      (e: unknown) => {
        assert.ok(e instanceof RangeError, `${maxSize}: ${e}`);
        assert.match(e.message, /'maxSize'/);
        assert.ok(e.message.includes(String(maxSize)), e.message);
        return true;
      },
    );
  }
  assert.throws(() => batch({ maxSize: "3" as unknown as number }), {
    name: "TypeError",
    message: /'maxSize'/,
  });
});

Deno.test("batch() rejects a bad minSize, and minSize above maxSize", () => {
  assert.throws(() => batch({ maxSize: 3, minSize: 4 }), {
    name: "RangeError",
    message: /'minSize'.*4/,
  });
  for (const minSize of [0, -2, 1.5, NaN]) {
    assert.throws(() => batch({ maxSize: 3, minSize }), {
      name: "RangeError",
      message: /'minSize'/,
    });
  }
  assert.throws(
    () => batch({ maxSize: 3, minSize: "2" as unknown as number }),
    { name: "TypeError", message: /'minSize'/ },
  );
  assert.equal(batch({ maxSize: 3, minSize: 3 }).kind, "batch");
});

Deno.test("batch() rejects a negative, NaN or too long maxWaitMs (Infinity is none)", () => {
  for (const maxWaitMs of [-1, -0.5, NaN, -Infinity, 2 ** 31]) {
    assert.throws(
      () => batch({ maxSize: 3, maxWaitMs }),
      (e: unknown) => {
        assert.ok(e instanceof RangeError, `${maxWaitMs}: ${e}`);
        assert.match(e.message, /'maxWaitMs'/);
        assert.ok(e.message.includes(String(maxWaitMs)), e.message);
        return true;
      },
    );
  }
  assert.throws(
    () => batch({ maxSize: 3, maxWaitMs: "10" as unknown as number }),
    { name: "TypeError", message: /'maxWaitMs'/ },
  );
  assert.equal(batch({ maxSize: 3, maxWaitMs: 0 }).kind, "batch");
  const spec = specOf(batch({ maxSize: 3, maxWaitMs: Infinity }))!;
  assert.equal(spec.kind === "batch" && spec.maxWaitMs, undefined);
});

Deno.test("batch() rejects options that are not an object, and a bad name", () => {
  assert.throws(() => batch(3 as unknown as BatchOptions), TypeError);
  assert.throws(() => batch({ maxSize: 3, name: "" }), TypeError);
});

Deno.test("batch() followed by batch() nests batches", async () => {
  const p = pipeline(
    batch<number>({ maxSize: 2 }),
    batch<number[]>({ maxSize: 2 }),
  );
  const expected = [[[1, 2], [3, 4]], [[5, 6], [7]]];
  assert.deepEqual(await p.run(rangeInclusive(1, 7)).collect(), expected);
  assert.deepEqual(
    await p.run(rangeInclusive(1, 7), { order: "completion" }).collect(),
    expected,
  );
  const rand = prng(5);
  const q = pipeline(
    map(async (x: number) => {
      await sleep(Math.floor(rand() * 6));
      return x;
    }, { concurrency: 4 }),
    batch<number>({ maxSize: 3 }),
    map(async (xs: number[]) => {
      await sleep(Math.floor(rand() * 6));
      return xs;
    }, { concurrency: 2 }),
    batch<number[]>({ maxSize: 2 }),
  );
  assert.deepEqual(await q.run(rangeInclusive(1, 10)).collect(), [
    [[1, 2, 3], [4, 5, 6]],
    [[7, 8, 9], [10]],
  ]);
});

Deno.test("batch() after filter() in input order holds consecutive surviving items", async () => {
  // Odd items are dropped, and item 1 (dropped) is decided last of all.
  const gates = new Gates();
  const p = pipeline(
    filter(async (x: number) => {
      await gates.wait(x);
      return x % 2 === 0;
    }, { concurrency: 10 }),
    batch<number>({ maxSize: 2 }),
  );
  const out = p.run(rangeInclusive(1, 10)).collect();
  await until(() => gates.started.length === 10, "10 predicates");
  for (const x of rangeInclusive(1, 10).reverse()) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [[2, 4], [6, 8], [10]]);
});

Deno.test("batch() after filter() is not blocked by filtered items", async () => {
  // Items 2 and 3 are dropped at once; 6 is held until the batch [1,4] is out.
  const gates = new Gates();
  const p = pipeline(
    filter(async (x: number) => {
      if (x === 6) await gates.wait(x);
      return x !== 2 && x !== 3;
    }, { concurrency: 10 }),
    batch<number>({ maxSize: 2 }),
  );
  const log: string[] = [];
  const flow = p.run(rangeInclusive(1, 6));
  const done = (async () => {
    for await (const xs of flow) log.push(JSON.stringify(xs));
  })();
  await until(() => log.length === 1, "the first batch before item 6");
  assert.deepEqual(log, ["[1,4]"]);
  gates.open(6);
  await done;
  assert.deepEqual(log, ["[1,4]", "[5,6]"]);
});

Deno.test("batch() after filter() emits the remainder when the last items are filtered", async () => {
  const rand = prng(3);
  const p = pipeline(
    filter(async (x: number) => {
      await sleep(Math.floor(rand() * 5));
      return x <= 4;
    }, { concurrency: 3 }),
    batch<number>({ maxSize: 3 }),
  );
  assert.deepEqual(await p.run(rangeInclusive(1, 9)).collect(), [[1, 2, 3], [
    4,
  ]]);
  const batches = await p.run(rangeInclusive(1, 9), { order: "completion" })
    .collect();
  assert.deepEqual(batches.flat().sort(), [1, 2, 3, 4]);
  for (const b of batches) assert.ok(b.length >= 1);
});

Deno.test("batch() works as the first stage and as the last stage", async () => {
  const first = pipeline(
    batch<number>({ maxSize: 2 }),
    map((xs: number[]) => sum(xs)),
  );
  assert.deepEqual(await first.run(rangeInclusive(1, 5)).collect(), [3, 7, 5]);
  const only = pipeline(batch<string>({ maxSize: 2 }));
  assert.deepEqual(await only.run(["a", "b", "c"]).collect(), [
    ["a", "b"],
    ["c"],
  ]);
  const last = pipeline(
    map(async (x: number) => {
      await sleep(5 - x);
      return x * 10;
    }, { concurrency: 5 }),
    batch<number>({ maxSize: 2 }),
  );
  assert.deepEqual(await last.run(rangeInclusive(1, 5)).collect(), [
    [10, 20],
    [30, 40],
    [50],
  ]);
  const stream = ReadableStream.from(rangeInclusive(1, 5));
  assert.deepEqual(await first.run(stream).collect(), [3, 7, 5]);
});

Deno.test("batch() then flatten() gives back the items in input order", async () => {
  const p = pipeline(
    batch<number>({ maxSize: 4, maxWaitMs: 2 }),
    flatten<number>(),
  );
  assert.deepEqual(
    await p.run(rangeInclusive(1, 50)).collect(),
    rangeInclusive(1, 50),
  );
});

Deno.test("batch() stage failure names the batch's first item", async () => {
  const p = pipeline(
    batch<number>({ maxSize: 3 }),
    map((xs: number[]) => {
      if (xs.includes(5)) throw new Error("bad batch");
      return xs;
    }, { name: "rerank" }),
  );
  const error = await p.run(rangeInclusive(1, 9)).collect().then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "rerank");
  assert.equal(error.index, 3);
  assert.deepEqual(error.item, [4, 5, 6]);
});

for (const order of ["input", "completion"] as const) {
  Deno.test(`batch() clears its timer when the run is aborted mid-batch (order ${order})`, async () => {
    const p = pipeline(batch<number>({ maxSize: 10, maxWaitMs: 60_000 }));
    const flow = p.run(openStream([1, 2]), { order });
    const out = flow.collect();
    await until(() => flow.stats().stages[0].queued === 2, "2 items batched");
    await flow.abort();
    await assert.rejects(out, { name: "AbortError" });
    // The leak sanitizer fails this test if the 60 s timer is still set.
  });
}

Deno.test("batch() clears its timer when the run is aborted with a reason", async () => {
  const p = pipeline(
    map((x: number) => x),
    batch<number>({ maxSize: 10, maxWaitMs: 60_000 }),
  );
  const controller = new AbortController();
  const flow = p.run(openStream([1, 2, 3]), { signal: controller.signal });
  const out = flow.collect();
  await until(() => flow.stats().stages[1].queued === 3, "3 items batched");
  const reason = new Error("enough");
  controller.abort(reason);
  await assert.rejects(out, (e) => e === reason);
});

Deno.test("batch() clears its timer when another stage fails the run", async () => {
  const p = pipeline(
    map((x: number) => {
      if (x === 3) throw new Error("fail on 3");
      return x;
    }),
    batch<number>({ maxSize: 10, maxWaitMs: 60_000 }),
  );
  await assert.rejects(p.run(rangeInclusive(1, 5)).collect(), PipelineError);
});

Deno.test("batch() clears its timer when the consumer leaves early", async () => {
  const p = pipeline(batch<number>({ maxSize: 2, maxWaitMs: 60_000 }));
  const seen: number[][] = [];
  for await (const xs of p.run(openStream([1, 2, 3]))) {
    seen.push(xs);
    await sleep(5); // let 3 start a new batch (and its timer)
    break;
  }
  assert.deepEqual(seen, [[1, 2]]);
});
