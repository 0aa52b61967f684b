import assert from "node:assert/strict";
import {
  filter,
  map,
  pipeline,
  PipelineError,
  type TaskContext,
} from "../mod.ts";
import {
  CountingSource,
  deferred,
  Gates,
  Gauge,
  prng,
  rangeInclusive,
  sleep,
  tick,
  until,
  withTimeout,
} from "./_helpers.ts";

Deno.test("map() yields results in input order when calls complete out of order", async () => {
  const gates = new Gates();
  const completed: number[] = [];
  const p = pipeline(map(async (x: number) => {
    await gates.wait(x);
    completed.push(x);
    return x * 10;
  }, { concurrency: 5 }));
  const flow = p.run([0, 1, 2, 3, 4]);
  const out = flow.collect();
  await until(() => gates.started.length === 5, "5 calls started");
  for (const x of [4, 2, 3, 0, 1]) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [0, 10, 20, 30, 40]);
  assert.deepEqual(completed, [4, 2, 3, 0, 1]);
});

Deno.test("map() yields results in completion order with order: 'completion'", async () => {
  const gates = new Gates();
  const p = pipeline(map(async (x: number) => {
    await gates.wait(x);
    return x * 10;
  }, { concurrency: 5 }));
  const out = p.run([0, 1, 2, 3, 4], { order: "completion" }).collect();
  await until(() => gates.started.length === 5, "5 calls started");
  for (const x of [3, 1, 4, 0, 2]) {
    gates.open(x);
    await tick();
  }
  assert.deepEqual(await out, [30, 10, 40, 0, 20]);
});

Deno.test("map() yields each result in input order as soon as every earlier one is done", async () => {
  const gates = new Gates();
  const p = pipeline(map(async (x: number) => {
    await gates.wait(x);
    return x;
  }, { concurrency: 4 }));
  const received: number[] = [];
  const flow = p.run([0, 1, 2, 3]);
  const it = flow[Symbol.asyncIterator]();
  await until(() => gates.started.length === 4, "4 calls started");
  gates.open(1);
  gates.open(3);
  await tick();
  gates.open(0); // 0 and 1 are now ready; 2 is not, so 3 must wait
  received.push((await it.next()).value as number);
  received.push((await it.next()).value as number);
  const third = it.next();
  let early: unknown = "nothing";
  third.then((r) => early = r.value);
  await tick();
  assert.equal(early, "nothing", "3 must wait for 2");
  gates.open(2);
  received.push((await third).value as number);
  received.push((await it.next()).value as number);
  assert.deepEqual(received, [0, 1, 2, 3]);
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

for (const limit of [1, 2, 3, 7]) {
  Deno.test(`map() with concurrency ${limit} keeps exactly that many calls in flight, starting one per completion`, async () => {
    const gates = new Gates();
    const gauge = new Gauge();
    const p = pipeline(map(async (x: number) => {
      gauge.enter();
      await gates.wait(x);
      gauge.leave();
      return x;
    }, { concurrency: limit }));
    const n = 20;
    const out = p.run(rangeInclusive(0, n - 1)).collect();
    await until(() => gates.started.length === limit, `${limit} calls`);
    await tick();
    assert.equal(gates.started.length, limit, "no call beyond the limit");
    // Each completion frees exactly one worker, which takes the next item.
    for (let done = 0; done < n - limit; done++) {
      gates.open(gates.started[done]);
      await until(
        () => gates.started.length === limit + done + 1,
        "the next call to start",
      );
      await tick();
      assert.equal(gates.started.length, limit + done + 1);
      assert.equal(gauge.current, limit);
    }
    gates.openAll();
    assert.deepEqual(await out, rangeInclusive(0, n - 1));
    assert.equal(gauge.peak, limit);
  });
}

Deno.test("map() never exceeds its concurrency with random delays, and reaches it", async () => {
  for (const limit of [1, 2, 4, 9]) {
    const rand = prng(limit * 7919);
    const gauge = new Gauge();
    const p = pipeline(map(async (x: number) => {
      gauge.enter();
      await sleep(Math.floor(rand() * 6));
      gauge.leave();
      return x;
    }, { concurrency: limit }));
    assert.deepEqual(
      await p.run(rangeInclusive(1, 40)).collect(),
      rangeInclusive(1, 40),
    );
    assert.equal(gauge.peak, limit, `peak for concurrency ${limit}`);
    assert.equal(gauge.current, 0);
  }
});

Deno.test("map() runs one call at a time by default", async () => {
  const gauge = new Gauge();
  const p = pipeline(map(async (x: number) => {
    gauge.enter();
    await sleep(1);
    gauge.leave();
    return x;
  }));
  assert.deepEqual(
    await p.run(rangeInclusive(1, 8)).collect(),
    rangeInclusive(1, 8),
  );
  assert.equal(gauge.peak, 1);
});

Deno.test("map() with concurrency Infinity is bounded by the run's bufferSize", async () => {
  const gates = new Gates();
  const source = new CountingSource(rangeInclusive(0, 49));
  const p = pipeline(map(async (x: number) => {
    await gates.wait(x);
    return x;
  }, { concurrency: Infinity }));
  const out = p.run(source, { bufferSize: 6 }).collect();
  await until(() => gates.started.length === 6, "6 calls started");
  await sleep(5);
  assert.equal(gates.started.length, 6, "no call beyond bufferSize");
  assert.equal(source.pulls, 6, "no item read beyond bufferSize");
  gates.open(0);
  await until(() => gates.started.length === 7, "a 7th call once one left");
  await sleep(5);
  assert.equal(gates.started.length, 7);
  for (const x of rangeInclusive(0, 49)) gates.open(x);
  assert.deepEqual(await out, rangeInclusive(0, 49));
});

Deno.test("map() does not let a slow item hold back the other workers", async () => {
  for (const order of ["input", "completion"] as const) {
    const othersDone = deferred();
    let completed = 0;
    let completedBeforeSlow = -1;
    const p = pipeline(map(async (x: number) => {
      if (x === 0) {
        await withTimeout(othersDone.promise, 3000, "items 1..9 while 0 runs");
        completedBeforeSlow = completed;
      } else {
        await sleep(1);
        if (++completed === 9) othersDone.resolve();
      }
      return x;
    }, { concurrency: 2 }));
    const results = await p.run(rangeInclusive(0, 9), { order }).collect();
    assert.equal(completedBeforeSlow, 9, `order ${order}`);
    if (order === "input") assert.deepEqual(results, rangeInclusive(0, 9));
    else assert.deepEqual(results, [...rangeInclusive(1, 9), 0]);
  }
});

Deno.test("map() gives each concurrent call a distinct workerId in [0, concurrency)", async () => {
  const rand = prng(42);
  const active = new Set<number>();
  const seen = new Set<number>();
  const p = pipeline(map(async (x: number, ctx) => {
    assert.ok(Number.isInteger(ctx.workerId));
    assert.ok(ctx.workerId >= 0 && ctx.workerId < 3, `${ctx.workerId}`);
    assert.ok(!active.has(ctx.workerId), `worker ${ctx.workerId} is busy`);
    active.add(ctx.workerId);
    seen.add(ctx.workerId);
    await sleep(Math.floor(rand() * 5));
    active.delete(ctx.workerId);
    return x;
  }, { concurrency: 3 }));
  assert.deepEqual(
    await p.run(rangeInclusive(1, 40)).collect(),
    rangeInclusive(1, 40),
  );
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
});

Deno.test("map() passes ctx with index, itemId, default stage name, context and attempt 1", async () => {
  const context = { user: 7 };
  const seen: TaskContext[] = [];
  const p = pipeline(
    filter((_: string) => true),
    map((x: string, ctx) => {
      seen.push(ctx);
      return x;
    }),
  );
  await p.run(["a", "b", "c"], { context }).collect();
  assert.deepEqual(seen.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(seen.map((c) => c.itemId), [0, 1, 2]);
  for (const ctx of seen) {
    assert.equal(ctx.stage, "map#2");
    assert.equal(ctx.attempt, 1);
    assert.equal(ctx.context, context, "the very object given to run()");
    assert.ok(ctx.signal instanceof AbortSignal);
    assert.equal(ctx.signal.aborted, false);
    assert.equal(ctx.workerId, 0);
  }
});

Deno.test("map() passes ctx with a custom stage name and run ids", async () => {
  const seen: TaskContext[] = [];
  const p = pipeline(map((x: string, ctx) => {
    seen.push(ctx);
    return x;
  }, { name: "fetch" }));
  await p.run(["a", "b"], { id: (item, i) => `${item}@${i}` }).collect();
  assert.deepEqual(seen.map((c) => [c.stage, c.itemId, c.index]), [
    ["fetch", "a@0", 0],
    ["fetch", "b@1", 1],
  ]);
  assert.equal(seen[0].context, undefined);
});

Deno.test("map() gives each run its own context", async () => {
  const seen: unknown[] = [];
  const p = pipeline(map((x: number, ctx) => {
    seen.push(ctx.context);
    return x;
  }));
  const a = { run: "a" };
  const b = { run: "b" };
  await Promise.all([
    p.run([1, 2], { context: a }).collect(),
    p.run([1, 2], { context: b }).collect(),
  ]);
  assert.equal(seen.filter((c) => c === a).length, 2);
  assert.equal(seen.filter((c) => c === b).length, 2);
});

Deno.test("map() with an array of functions runs them in sequence on each item", async () => {
  const p = pipeline(map([
    (x: number) => x + 1,
    async (x: number) => {
      await sleep(1);
      return x * 10;
    },
    (x: number) => `#${x}`,
  ], { concurrency: 3 }));
  assert.deepEqual(await p.run([1, 2, 3, 4]).collect(), [
    "#20",
    "#30",
    "#40",
    "#50",
  ]);
});

Deno.test("map() with an array of functions holds one worker slot through the whole sequence", async () => {
  const rand = prng(7);
  const sequences = new Gauge(); // from the start of fn 1 to the end of fn 3
  const calls = new Gauge(); // any one function running
  const workers = new Map<number, number>(); // item -> workerId
  const step = async (x: number, ctx: TaskContext, i: number) => {
    calls.enter();
    if (i === 0) {
      sequences.enter();
      workers.set(x, ctx.workerId);
    } else {
      assert.equal(ctx.workerId, workers.get(x), "same worker slot");
    }
    await sleep(Math.floor(rand() * 4));
    if (i === 2) sequences.leave();
    calls.leave();
    return x;
  };
  const p = pipeline(map([
    (x: number, ctx: TaskContext) => step(x, ctx, 0),
    (x: number, ctx: TaskContext) => step(x, ctx, 1),
    (x: number, ctx: TaskContext) => step(x, ctx, 2),
  ], { concurrency: 2 }));
  assert.deepEqual(
    await p.run(rangeInclusive(1, 30)).collect(),
    rangeInclusive(1, 30),
  );
  assert.equal(sequences.peak, 2, "items in their sequence at once");
  assert.equal(calls.peak, 2);
});

Deno.test("map() with an array of functions does not start an item between two functions of another", async () => {
  const gates = new Gates<string>();
  const starts: number[] = [];
  const p = pipeline(map([
    (x: number) => {
      starts.push(x);
      return x;
    },
    async (x: number) => {
      await gates.wait(`second:${x}`);
      return x;
    },
  ], { concurrency: 1 }));
  const out = p.run([1, 2, 3]).collect();
  await until(() => gates.started.length === 1, "item 1 in its 2nd function");
  await sleep(5);
  assert.deepEqual(starts, [1], "item 2 waits for the slot");
  gates.open("second:1");
  await until(() => gates.started.length === 2, "item 2 in its 2nd function");
  assert.deepEqual(starts, [1, 2]);
  gates.open("second:2");
  gates.open("second:3");
  assert.deepEqual(await out, [1, 2, 3]);
});

Deno.test("map() accepts synchronous functions", async () => {
  const p = pipeline(
    map((x: number) => x + 1, { concurrency: 4 }),
    map((x: number) => String(x)),
  );
  assert.deepEqual(await p.run(rangeInclusive(1, 5)).collect(), [
    "2",
    "3",
    "4",
    "5",
    "6",
  ]);
});

Deno.test("map() rejects the run with a PipelineError when the function throws synchronously", async () => {
  const boom = new Error("boom");
  const p = pipeline(
    map((x: number) => x),
    map((x: number) => {
      if (x === 30) throw boom;
      return x;
    }, { name: "check" }),
  );
  const error = await p.run([10, 20, 30, 40], { id: (x) => `id-${x}` })
    .collect().then(() => undefined, (e) => e);
  assert.ok(error instanceof PipelineError, String(error));
  assert.equal(error.name, "PipelineError");
  assert.equal(error.stage, "check");
  assert.equal(error.itemId, "id-30");
  assert.equal(error.index, 2);
  assert.equal(error.item, 30);
  assert.equal(error.cause, boom);
});

Deno.test("map() rejects the run with a PipelineError when the promise rejects", async () => {
  const p = pipeline(map(async (x: number) => {
    await sleep(1);
    if (x === 2) throw new TypeError("bad item");
    return x;
  }, { concurrency: 2 }));
  const error = await p.run([1, 2, 3]).collect().then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof PipelineError);
  assert.equal(error.stage, "map#1");
  assert.equal(error.itemId, 1);
  assert.equal(error.index, 1);
  assert.equal(error.item, 2);
  assert.ok(error.cause instanceof TypeError);
  assert.equal((error.cause as Error).message, "bad item");
});

Deno.test("map() failure stops the run: no later item starts", async () => {
  const calls: number[] = [];
  const p = pipeline(map((x: number) => {
    calls.push(x);
    if (x === 3) throw new Error("stop here");
    return x;
  }));
  const source = new CountingSource(rangeInclusive(1, 100));
  await assert.rejects(p.run(source).collect(), PipelineError);
  assert.deepEqual(calls, [1, 2, 3]);
  assert.ok(source.pulls < 100, `read ${source.pulls} of 100`);
});

Deno.test("map() rejects a concurrency that is not a positive integer with a RangeError", () => {
  for (const concurrency of [0, -1, 1.5, NaN, -Infinity]) {
    assert.throws(
      () => map((x: number) => x, { concurrency }),
      (e: unknown) => {
        assert.ok(e instanceof RangeError, `${concurrency}: ${e}`);
        assert.match(e.message, /'concurrency'/);
        assert.ok(
          e.message.includes(String(concurrency)),
          `${e.message} names ${concurrency}`,
        );
        return true;
      },
    );
  }
});

Deno.test("map() rejects a concurrency that is not a number with a TypeError", () => {
  for (const concurrency of ["3", null, true]) {
    assert.throws(
      () =>
        map((x: number) => x, {
          concurrency: concurrency as unknown as number,
        }),
      (e: unknown) => {
        assert.ok(e instanceof TypeError, `${concurrency}: ${e}`);
        assert.match(e.message, /'concurrency'/);
        return true;
      },
    );
  }
  assert.throws(
    () => map((x: number) => x, { concurrency: "3" as unknown as number }),
    { name: "TypeError", message: /'concurrency'.*"3"/ },
  );
});

Deno.test("map() accepts concurrency Infinity and large integers", () => {
  assert.equal(map((x) => x, { concurrency: Infinity }).kind, "map");
  assert.equal(map((x) => x, { concurrency: 1000 }).kind, "map");
});

Deno.test("map() rejects a fn that is not a function with a TypeError", () => {
  for (const fn of [undefined, null, 42, "x", {}]) {
    assert.throws(
      () => map(fn as unknown as (x: number) => number),
      (e: unknown) => {
        assert.ok(e instanceof TypeError, `${String(fn)}: ${e}`);
        assert.match(e.message, /'fn'/);
        return true;
      },
    );
  }
});

Deno.test("map() rejects an empty array of functions with a TypeError", () => {
  assert.throws(() => map([]), TypeError);
});

Deno.test("map() rejects an array holding a non-function with a TypeError naming it", () => {
  assert.throws(
    () => map([(x: number) => x, 5 as unknown as (x: number) => number]),
    { name: "TypeError", message: /'fn\[1\]'/ },
  );
});

Deno.test("map() rejects options that are not an object, and a bad name", () => {
  assert.throws(
    () => map((x: number) => x, 3 as unknown as { concurrency: number }),
    TypeError,
  );
  assert.throws(() => map((x: number) => x, { name: "" }), TypeError);
  assert.throws(
    () => map((x: number) => x, { name: 5 as unknown as string }),
    TypeError,
  );
});

Deno.test("map() follows the conveyor timeline: a slow item holds back only the results after it", async () => {
  // Task times of items 1..8 from the conveyor README, scaled down 10x.
  const times = [10, 20, 30, 40, 50, 200, 70, 80];
  const log: string[] = [];
  const p = pipeline(map(async (x: number) => {
    await sleep(times[x - 1]);
    log.push(`done:${x}`);
    return x;
  }, { concurrency: 8 }));
  const out: number[] = [];
  for await (const x of p.run(rangeInclusive(1, 8))) {
    out.push(x);
    log.push(`out:${x}`);
  }
  assert.deepEqual(out, rangeInclusive(1, 8));
  const at = (entry: string) => log.indexOf(entry);
  for (const x of [1, 2, 3, 4, 5]) {
    assert.ok(at(`out:${x}`) < at("done:6"), `${x} arrives before 6 is done`);
  }
  for (const x of [7, 8]) {
    assert.ok(at(`done:${x}`) < at("done:6"), `${x} finishes before 6`);
  }
  // 6, 7 and 8 come out together, right after 6 completes.
  assert.deepEqual(log.slice(at("done:6")), [
    "done:6",
    "out:6",
    "out:7",
    "out:8",
  ]);
});
