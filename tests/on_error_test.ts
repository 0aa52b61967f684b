// map() onError: "fail" (the default), "skip" with flow.failures, and a
// handler returning "fail" | "skip" | { value } (sync or async); bad
// handlers and bad values; accounting; the seeds' defects (conveyor's
// swallowed middle-stage errors, AntFlow's hanging stream).
import assert from "node:assert/strict";
import {
  batch,
  filter,
  flatten,
  type FlowStats,
  type ItemEventDetail,
  map,
  type MapOptions,
  type OnError,
  pipeline,
  PipelineError,
  type TaskContext,
} from "../mod.ts";
import {
  deferred,
  Gates,
  isSettled,
  prng,
  rangeInclusive,
  rejection,
  sleep,
  tick,
  until,
  untilAborted,
  withTimeout,
} from "./_helpers.ts";

/** `itemsIn === itemsOut + skipped + filtered + cancelled + inFlight`. */
function assertBalanced(s: FlowStats, when: string): void {
  const sum = s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight;
  assert.ok(
    Math.abs(s.itemsIn - sum) < 1e-9,
    `${when}: itemsIn ${s.itemsIn} !== out ${s.itemsOut} + skipped ${s.skipped} + filtered ${s.filtered} + cancelled ${s.cancelled} + inFlight ${s.inFlight}`,
  );
}

// Ways of asking for "fail": the default (the fast path), the explicit
// option on a stage that also has a timeout (the slow path), and a handler
// deciding "fail", sync or async.
const failVariants: [string, MapOptions][] = [
  ["default", {}],
  ['"fail"', { onError: "fail", timeoutMs: 60_000 }],
  ['a handler returning "fail"', { onError: () => "fail" }],
  [
    'an async handler returning "fail"',
    { onError: async () => (await tick(), "fail" as const) },
  ],
];

// ---- "fail" ------------------------------------------------------------------

// Stage a: x * 10, stage b: x + 1, stage c: x * 2; the stage at `position`
// fails on the input item 3 (index 2), which it receives as `received`.
const positions = [
  { position: "first", stage: "a", received: 3 },
  { position: "middle", stage: "b", received: 30 },
  { position: "last", stage: "c", received: 31 },
];

for (const [variant, options] of failVariants) {
  for (const order of ["input", "completion"] as const) {
    Deno.test(`map() onError ${variant} rejects with a PipelineError from the first, middle and last stage (order: "${order}")`, async () => {
      for (const { position, stage, received } of positions) {
        const cause = new Error(`boom in ${stage}`);
        const step = (name: string, f: (x: number) => number) =>
          map(async (x: number, ctx) => {
            await sleep(ctx.index % 3);
            if (name === stage && ctx.index === 2) throw cause;
            return f(x);
          }, { ...options, name, concurrency: 2 });
        const p = pipeline(
          step("a", (x) => x * 10),
          step("b", (x) => x + 1),
          step("c", (x) => x * 2),
        );
        const flow = p.run([1, 2, 3, 4, 5, 6], {
          order,
          id: (x) => `id${x}`,
        });
        const error = await withTimeout(
          rejection(flow.collect()),
          3000,
          `failure in the ${position} stage`,
        );
        assert(error instanceof PipelineError, `${position}: ${error}`);
        assert.equal(error.stage, stage, position);
        assert.equal(error.itemId, "id3", position);
        assert.equal(error.index, 2, position);
        assert.equal(error.item, received, position);
        assert.equal(error.cause, cause, position);
        assert.equal(flow.failures.length, 0, "a failure is not a skip");
        assertBalanced(flow.stats(), position);
        assert.equal(flow.stats().inFlight, 0);
      }
    });
  }

  Deno.test(`map() onError ${variant}: the first final failure aborts the other in-flight calls and rejects after they returned`, async () => {
    const events: string[] = [];
    const signals: AbortSignal[] = [];
    const p = pipeline(map(async (x: number, ctx) => {
      if (x === 2) {
        await until(() => signals.length === 2, "2 other calls in flight");
        throw new Error("fail");
      }
      signals.push(ctx.signal);
      await untilAborted(ctx.signal).catch(() => {});
      events.push(`abort seen by ${x}`);
      await sleep(10);
      events.push(`returned ${x}`);
      return x;
    }, { ...options, concurrency: 3 }));
    const flow = p.run(rangeInclusive(0, 9));
    const error = await flow.collect().then(
      () => assert.fail("resolved"),
      (e) => (events.push("rejected"), e),
    );
    assert(error instanceof PipelineError, String(error));
    assert.equal(error.item, 2);
    assert.deepEqual(events.slice(-1), ["rejected"]);
    assert.equal(events.length, 5, events.join());
    assert(signals.every((s) => s.aborted));
    assert.equal(signals[0].reason, error);
    const s = flow.stats();
    assert.equal(s.inFlight, 0);
    assert.ok(s.cancelled > 0);
    assertBalanced(s, "after the failure");
  });
}

for (const order of ["input", "completion"] as const) {
  Deno.test(`map() onError fail: a middle-stage error rejects the run, never swallowed (conveyor's defect, order: "${order}")`, async () => {
    const boom = new Error("middle");
    const p = pipeline(
      map(async (x: number) => (await tick(), x)),
      map((x: number) => {
        if (x === 3) throw boom;
        return x;
      }, { name: "middle", retry: { attempts: 2, random: () => 0 } }),
      map(async (x: number) => (await tick(), x * 2), { concurrency: 3 }),
    );
    const error = await withTimeout(
      rejection(p.run(rangeInclusive(0, 9), { order }).collect()),
      3000,
      "middle-stage failure",
    );
    assert(error instanceof PipelineError, String(error));
    assert.equal(error.stage, "middle");
    assert.equal(error.cause, boom);

    // The same through a for await loop: the earlier results, then the error.
    const seen: number[] = [];
    const loop = (async () => {
      for await (const x of p.run(rangeInclusive(0, 9), { order })) {
        seen.push(x);
      }
    })();
    const viaLoop = await withTimeout(rejection(loop), 3000, "for await");
    assert(viaLoop instanceof PipelineError, String(viaLoop));
    assert.equal(viaLoop.stage, "middle");
    assert.ok(!seen.includes(6), `item 3 was not delivered: ${seen}`);

    // Nor behind later stages that hold or drop items: batch, flatten and a
    // filter that drops everything that gets through.
    const q = pipeline(
      map((x: number) => x),
      map((x: number) => {
        if (x === 4) throw boom;
        return x;
      }, { name: "middle" }),
      batch<number>({ maxSize: 2 }),
      flatten<number>(),
      filter((x: number) => x > 100),
    );
    const behind = await withTimeout(
      rejection(q.run(rangeInclusive(0, 7), { order }).collect()),
      3000,
      "middle-stage failure before batch, flatten and filter",
    );
    assert(behind instanceof PipelineError, String(behind));
    assert.equal(behind.stage, "middle");
    assert.equal(behind.item, 4);
    assert.equal(behind.cause, boom);
  });
}

Deno.test("map() onError fail: for await in completion order over a failing stage rejects rather than hangs (AntFlow's defect)", async () => {
  for (
    const options of [
      {},
      { timeoutMs: 60_000 },
      { retry: { attempts: 2, random: () => 0 } },
    ] as MapOptions[]
  ) {
    const p = pipeline(map(async (x: number) => {
      await sleep(x % 4);
      if (x === 5) throw new Error("five");
      return x;
    }, { ...options, concurrency: 3 }));
    const seen: number[] = [];
    const loop = (async () => {
      for await (
        const x of p.run(rangeInclusive(0, 19), { order: "completion" })
      ) {
        seen.push(x);
      }
    })();
    const error = await withTimeout(
      rejection(loop),
      3000,
      `the stream must end with the failure (${JSON.stringify(options)})`,
    );
    assert(error instanceof PipelineError, String(error));
    assert.equal(error.item, 5);
    assert.ok(!seen.includes(5));
  }
});

// ---- "skip" ------------------------------------------------------------------

Deno.test("map() onError skip drops the item, records it in flow.failures and the rest flows", async () => {
  const errors = new Map<number, Error>();
  const p = pipeline(map((x: number) => {
    if (x === 2 || x === 4) {
      const error = new Error(`bad ${x}`);
      errors.set(x, error);
      throw error;
    }
    return x * 10;
  }, { name: "parse", onError: "skip" }));
  const flow = p.run(rangeInclusive(0, 6), { id: (x) => `#${x}` });
  assert.deepEqual(await flow.collect(), [0, 10, 30, 50, 60]);
  assert.deepEqual(flow.failures, [
    {
      itemId: "#2",
      index: 2,
      stage: "parse",
      item: 2,
      error: errors.get(2),
      attempts: 1,
    },
    {
      itemId: "#4",
      index: 4,
      stage: "parse",
      item: 4,
      error: errors.get(4),
      attempts: 1,
    },
  ]);
  assert.equal(flow.failures[0].error, errors.get(2));
  const s = flow.stats();
  assert.equal(s.skipped, 2);
  assert.equal(s.itemsOut, 5);
  assert.equal(s.stages[0].skipped, 2);
  assert.equal(s.stages[0].failed, 2);
  assert.equal(s.stages[0].completed, 5);
  assertBalanced(s, "after the run");
});

Deno.test("map() onError skip after retries records the number of attempts made", async () => {
  const calls = new Map<number, number>();
  const p = pipeline(map((x: number) => {
    calls.set(x, (calls.get(x) ?? 0) + 1);
    if (x === 1) throw new Error(`try ${calls.get(x)}`);
    return x;
  }, { onError: "skip", retry: { attempts: 3, random: () => 0 } }));
  const flow = p.run([0, 1, 2]);
  assert.deepEqual(await flow.collect(), [0, 2]);
  assert.equal(calls.get(1), 3);
  assert.equal(flow.failures.length, 1);
  assert.equal(flow.failures[0].attempts, 3);
  assert.equal((flow.failures[0].error as Error).message, "try 3");
});

Deno.test("map() onError skip fires 'failed' then 'skipped' with the item and its error", async () => {
  const boom = new Error("boom");
  const p = pipeline(map((x: number) => {
    if (x === 1) throw boom;
    return x;
  }, { name: "s", onError: "skip" }));
  const flow = p.run([0, 1, 2]);
  const events: [string, ItemEventDetail][] = [];
  flow.addEventListener("failed", (e) => events.push(["failed", e.detail]));
  flow.addEventListener("skipped", (e) => events.push(["skipped", e.detail]));
  assert.deepEqual(await flow.collect(), [0, 2]);
  assert.deepEqual(events.map(([type]) => type), ["failed", "skipped"]);
  for (const [, detail] of events) {
    assert.equal(detail.error, boom);
    assert.equal(detail.itemId, 1);
    assert.equal(detail.index, 1);
    assert.equal(detail.stage, "s");
    assert.equal(detail.attempt, 1);
    assert.equal(detail.workerId, 0);
  }
});

Deno.test("map() onError skip in input order: a skipped item does not block the items after it", async () => {
  const gates = new Gates();
  const p = pipeline(map(async (x: number) => {
    if (x === 0) {
      await gates.wait(0);
      throw new Error("zero");
    }
    return x;
  }, { concurrency: 2, onError: "skip" }));
  const flow = p.run([0, 1, 2, 3]);
  const it = flow[Symbol.asyncIterator]();
  const first = it.next();
  await until(() => flow.stats().stages[0].completed === 3, "items 1..3");
  assert.equal(await isSettled(first), false, "item 0 is still running");
  gates.open(0);
  assert.deepEqual(await withTimeout(first, 3000, "item 1"), {
    done: false,
    value: 1,
  });
  assert.deepEqual((await it.next()).value, 2);
  assert.deepEqual((await it.next()).value, 3);
  assert.equal((await it.next()).done, true);
  assert.equal(flow.failures.length, 1);
});

Deno.test("map() onError skip keeps the stage working: later items still flow, in both orders", async () => {
  for (const order of ["input", "completion"] as const) {
    const rand = prng(3);
    const p = pipeline(
      map(async (x: number) => {
        await sleep(Math.floor(rand() * 3));
        if (x % 3 === 0) throw new Error(`${x}`);
        return x;
      }, { concurrency: 2, onError: "skip" }),
      map((x: number) => x * 2),
    );
    const flow = p.run(rangeInclusive(0, 29), { order });
    const out = await flow.collect();
    const expected = rangeInclusive(0, 29).filter((x) => x % 3 !== 0).map((x) =>
      x * 2
    );
    if (order === "input") assert.deepEqual(out, expected);
    else assert.deepEqual([...out].sort((a, b) => a - b), expected);
    assert.deepEqual(
      flow.failures.map((f) => f.index).sort((a, b) => a - b),
      rangeInclusive(0, 9).map((x) => x * 3),
    );
  }
});

Deno.test("map() onError skip on a stage working on batches records the batch array and counts its items", async () => {
  const p = pipeline(
    batch<number>({ maxSize: 3 }),
    map((xs: number[]) => {
      if (xs.includes(4)) throw new Error("bad batch");
      return xs.map((x) => x * 10);
    }, { name: "batches", onError: "skip" }),
    flatten<number>(),
  );
  const flow = p.run(rangeInclusive(0, 7));
  assert.deepEqual(await flow.collect(), [0, 10, 20, 60, 70]);
  assert.equal(flow.failures.length, 1);
  const record = flow.failures[0];
  assert.deepEqual(record.item, [3, 4, 5]);
  assert.equal(record.index, 3);
  assert.equal(record.itemId, 3);
  assert.equal(record.stage, "batches");
  assert.equal(record.attempts, 1);
  const s = flow.stats();
  assert.equal(s.skipped, 3, "a skipped batch counts its items");
  assert.equal(s.stages[1].skipped, 1);
  assert.equal(s.itemsIn, 8);
  assert.equal(s.itemsOut, 5);
  assertBalanced(s, "after the run");
});

// ---- handlers ----------------------------------------------------------------

for (const kind of ["sync", "async"] as const) {
  const handler = (decide: (x: number) => unknown): OnError =>
    kind === "sync"
      ? (_error, item) => decide(item as number) as "skip"
      : async (_error, item) => {
        await sleep(1);
        return decide(item as number) as "skip";
      };
  const failOdd = (x: number) => {
    if (x % 2 === 1) throw new Error(`odd ${x}`);
    return x;
  };

  Deno.test(`map() onError ${kind} handler returning { value } substitutes the result, in order`, async () => {
    const p = pipeline(
      map(failOdd, {
        concurrency: 3,
        onError: handler((x) => ({ value: -x })),
      }),
      map((x: number) => x * 10),
    );
    const flow = p.run(rangeInclusive(0, 6));
    assert.deepEqual(await flow.collect(), [0, -10, 20, -30, 40, -50, 60]);
    assert.equal(flow.failures.length, 0);
    const s = flow.stats();
    assert.equal(s.stages[0].failed, 3);
    assert.equal(s.stages[0].skipped, 0);
    assert.equal(s.itemsOut, 7);
    assertBalanced(s, "after the run");
  });

  Deno.test(`map() onError ${kind} handler returning { value: undefined } substitutes undefined`, async () => {
    const p = pipeline(map(failOdd, {
      onError: handler(() => ({ value: undefined })),
    }));
    assert.deepEqual(await p.run([0, 1, 2]).collect(), [0, undefined, 2]);
  });

  Deno.test(`map() onError ${kind} handler returning "skip" skips the item`, async () => {
    const p = pipeline(map(failOdd, {
      concurrency: 2,
      onError: handler(() => "skip"),
    }));
    const flow = p.run(rangeInclusive(0, 5));
    const skipped: number[] = [];
    flow.addEventListener("skipped", (e) => skipped.push(e.detail.index));
    assert.deepEqual(await flow.collect(), [0, 2, 4]);
    assert.deepEqual(flow.failures.map((f) => f.item), [1, 3, 5]);
    assert.deepEqual(skipped, [1, 3, 5]);
    assert.equal(flow.stats().skipped, 3);
  });

  Deno.test(`map() onError ${kind} handler returning "fail" fails the run with the original error`, async () => {
    const p = pipeline(map(failOdd, {
      name: "odd",
      onError: handler((x) => x === 3 ? "fail" : "skip"),
    }));
    const flow = p.run(rangeInclusive(0, 5));
    const error = await rejection(flow.collect());
    assert(error instanceof PipelineError, String(error));
    assert.equal(error.stage, "odd");
    assert.equal(error.item, 3);
    assert.equal((error.cause as Error).message, "odd 3");
    assert.deepEqual(flow.failures.map((f) => f.item), [1]);
  });

  Deno.test(`map() onError ${kind} handler that throws fails the run with the thrown error as cause`, async () => {
    const fromHandler = new Error("handler broke");
    const onError: OnError = kind === "sync"
      ? () => {
        throw fromHandler;
      }
      : async () => {
        await sleep(1);
        throw fromHandler;
      };
    const flow = pipeline(map(failOdd, { name: "h", onError })).run([0, 1, 2]);
    const error = await rejection(flow.collect());
    assert(error instanceof PipelineError, String(error));
    assert.equal(error.cause, fromHandler);
    assert.equal(error.stage, "h");
    assert.equal(error.item, 1);
    assert.equal(flow.failures.length, 0);
  });

  Deno.test(`map() onError ${kind} handler returning anything else fails the run with a TypeError naming 'onError'`, async () => {
    for (
      const bad of ["retry", "SKIP", 42, null, undefined, {}, true, ["skip"]]
    ) {
      const flow = pipeline(map(failOdd, { onError: handler(() => bad) }))
        .run([0, 1, 2]);
      const error = await rejection(flow.collect());
      assert(
        error instanceof PipelineError,
        `${JSON.stringify(bad)}: ${error}`,
      );
      assert(error.cause instanceof TypeError, String(error.cause));
      assert.match(error.cause.message, /'onError'/);
      assert.equal(error.item, 1);
      assert.equal(flow.failures.length, 0);
    }
  });
}

Deno.test("map() onError handler receives the error, the item the stage got and the ctx of the last attempt", async () => {
  const calls: [unknown, unknown, TaskContext][] = [];
  const thrown: unknown[] = [];
  const context = { tenant: "t1" };
  const p = pipeline(
    map((x: number) => x * 100),
    map((x: number, ctx) => {
      if (x === 100) {
        const error = new Error(`attempt ${ctx.attempt}`);
        thrown.push(error);
        throw error;
      }
      return x;
    }, {
      name: "second",
      retry: { attempts: 2, random: () => 0 },
      onError: (error, item, ctx) => {
        calls.push([error, item, ctx]);
        return { value: "fallback" };
      },
    }),
  );
  const flow = p.run([0, 1, 2], { context, id: (x) => `k${x}` });
  assert.deepEqual(await flow.collect(), [0, "fallback", 200]);
  assert.equal(calls.length, 1, "once per item, after the retries");
  const [error, item, ctx] = calls[0];
  assert.equal(error, thrown[1]);
  assert.equal(item, 100);
  assert.equal(ctx.attempt, 2);
  assert.equal(ctx.index, 1);
  assert.equal(ctx.itemId, "k1");
  assert.equal(ctx.stage, "second");
  assert.equal(ctx.workerId, 0);
  assert.equal(ctx.context, context);
  assert.ok(ctx.signal instanceof AbortSignal);
  assert.equal(ctx.signal.aborted, false);
});

Deno.test("map() onError an async handler still deciding when the run is aborted does not outlive the run", async () => {
  const decided = deferred<"skip">();
  let handlerReturned = false;
  const p = pipeline(map((x: number) => {
    if (x === 0) throw new Error("zero");
    return x;
  }, {
    onError: async () => {
      const d = await decided.promise;
      handlerReturned = true;
      return d;
    },
  }));
  const flow = p.run([0, 1]);
  const out = rejection(flow.collect());
  await until(() => flow.stats().stages[0].failed === 1, "the failure");
  const reason = new Error("stop");
  const stopped = flow.abort(reason);
  await tick();
  assert.equal(await isSettled(out), false, "waits for the handler");
  decided.resolve("skip");
  assert.equal(await withTimeout(out, 2000, "abort"), reason);
  await stopped;
  assert.equal(handlerReturned, true);
  assert.equal(flow.failures.length, 0, "not skipped after the abort");
});

Deno.test("map() onError rejects a bad value at the call site, naming 'onError'", () => {
  const f = (x: number) => x;
  for (const onError of ["ignore", "Skip", "", 42, null, true, {}, []]) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => map(f, { onError: onError as any }),
      (e: unknown) => e instanceof TypeError && /'onError'/.test(e.message),
      JSON.stringify(onError),
    );
  }
  for (const onError of ["fail", "skip", () => "skip" as const] as const) {
    assert.doesNotThrow(() => map(f, { onError }));
  }
});

// ---- accounting --------------------------------------------------------------

Deno.test("map() onError accounting: itemsIn === itemsOut + skipped + filtered + cancelled + inFlight, during and after a mixed run", async () => {
  const rand = prng(11);
  const samples: FlowStats[] = [];
  const p = pipeline(
    map(async (x: number) => {
      samples.push(flow.stats());
      await sleep(Math.floor(rand() * 3));
      if (x % 7 === 3) throw new Error("skip me"); // 3, 10, 17, 24
      return x;
    }, { concurrency: 3, onError: "skip" }),
    filter((x: number) => x % 2 === 0),
    map(async (x: number) => {
      samples.push(flow.stats());
      await sleep(Math.floor(rand() * 3));
      if (x === 12) throw new Error("substitute me");
      return x;
    }, { concurrency: 2, onError: () => ({ value: -12 }) }),
  );
  const flow = p.run(rangeInclusive(0, 29));
  const out = await flow.collect();
  assert.deepEqual(
    out,
    [0, 2, 4, 6, 8, -12, 14, 16, 18, 20, 22, 26, 28],
  );
  for (const [i, s] of samples.entries()) assertBalanced(s, `sample ${i}`);
  const s = flow.stats();
  assertBalanced(s, "after the run");
  assert.equal(s.itemsIn, 30);
  assert.equal(s.itemsOut, 13);
  assert.equal(s.skipped, 4);
  assert.equal(s.filtered, 13);
  assert.equal(s.cancelled, 0);
  assert.equal(s.inFlight, 0);
  assert.equal(s.failed, 5, "skipped and substituted items both failed");
  assert.equal(s.done, true);
  assert.deepEqual(flow.failures.map((f) => f.item), [3, 10, 17, 24]);
});

Deno.test("map() onError accounting after a run that fails: cancelled items balance and nothing is in flight", async () => {
  const p = pipeline(
    map(async (x: number) => {
      await sleep(x % 3);
      if (x % 5 === 1) throw new Error("skip me");
      return x;
    }, { concurrency: 2, onError: "skip" }),
    filter((x: number) => x % 2 === 0),
    map(async (x: number) => {
      await sleep(1);
      if (x === 20) throw new Error("fatal");
      return x;
    }),
  );
  const flow = p.run(rangeInclusive(0, 99), { bufferSize: 8 });
  const error = await rejection(flow.collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.item, 20);
  const s = flow.stats();
  assertBalanced(s, "after the failure");
  assert.equal(s.inFlight, 0);
  assert.ok(s.cancelled >= 1, `cancelled ${s.cancelled}`);
  assert.ok(s.itemsIn < 100, "the source stopped being read");
  assert.equal(s.done, true);
});
