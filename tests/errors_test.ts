// Failures: PipelineError from any stage in both orders, cancellation of the
// rest, delivery to every kind of consumer, and source errors.
import assert from "node:assert/strict";
import { batch, map, pipeline, PipelineError } from "../mod.ts";
import {
  asyncSource,
  range,
  rejection,
  sleep,
  streamSource,
  ticks,
  until,
  whenAborted,
} from "./_helpers.ts";

// ---- PipelineError from every position, in both orders ------------------------

// Stage a: x * 10, stage b: x + 1, stage c: x * 2; the stage at `position`
// fails on the input item 3 (index 2) and receives `received`.
const positions = [
  { position: 0, stage: "a", received: 3 },
  { position: 1, stage: "b", received: 30 },
  { position: 2, stage: "c", received: 31 },
];

for (const order of ["input", "completion"] as const) {
  for (const { position, stage, received } of positions) {
    Deno.test(`PipelineError: a failure in stage ${position + 1} of 3 rejects the run (order: "${order}")`, async () => {
      const cause = new Error(`boom in ${stage}`);
      const step = (name: string, f: (x: number) => number) =>
        map(async (x: number, ctx) => {
          await sleep(ctx.index % 3);
          if (name === stage && ctx.index === 2) throw cause;
          return f(x);
        }, { name, concurrency: 2 });
      const p = pipeline(
        step("a", (x) => x * 10),
        step("b", (x) => x + 1),
        step("c", (x) => x * 2),
      );
      const error = await rejection(
        p.run([1, 2, 3, 4, 5, 6], { order }).collect(),
      );
      assert(error instanceof PipelineError, String(error));
      assert(error instanceof Error);
      assert.equal(error.name, "PipelineError");
      assert.equal(error.stage, stage);
      assert.equal(error.index, 2);
      assert.equal(error.itemId, 2);
      assert.equal(error.item, received);
      assert.equal(error.cause, cause);
      assert.match(error.message, new RegExp(stage));
      assert.match(error.message, /boom/);
    });
  }
}

Deno.test("PipelineError: a failure after a batch names the batch array and the index of its first item", async () => {
  const p = pipeline(
    batch<string>({ maxSize: 2 }),
    map((xs: string[]) => {
      if (xs.includes("c")) throw new Error("bad batch");
      return xs.join("");
    }),
  );
  const error = await rejection(
    p.run(["a", "b", "c", "d", "e"], { id: (s) => `id:${s}` }).collect(),
  );
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.stage, "map#2");
  assert.deepEqual(error.item, ["c", "d"]);
  assert.equal(error.index, 2);
  assert.equal(error.itemId, "id:c");
});

Deno.test("PipelineError: itemId is the one given by run()'s id option", async () => {
  const p = pipeline(map((u: { key: string }) => {
    if (u.key === "k2") throw new Error("nope");
    return u;
  }));
  const error = await rejection(
    p.run([{ key: "k1" }, { key: "k2" }], { id: (u) => u.key }).collect(),
  );
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.itemId, "k2");
  assert.equal(error.index, 1);
  assert.deepEqual(error.item, { key: "k2" });
  assert.match(error.message, /k2/);
});

Deno.test("PipelineError: sync throws, async rejections and non-Error causes are all wrapped", async () => {
  const cases: [string, (x: number) => unknown, unknown][] = [
    ["sync throw", () => {
      throw new RangeError("sync");
    }, RangeError],
    [
      "async rejection",
      () => Promise.reject(new SyntaxError("async")),
      SyntaxError,
    ],
    ["rejected thenable", () => ({
      then: (_: unknown, reject: (e: unknown) => void) =>
        reject(new Error("t")),
    }), Error],
  ];
  for (const [what, fn, type] of cases) {
    const error = await rejection(pipeline(map(fn)).run([1]).collect());
    assert(error instanceof PipelineError, `${what}: ${error}`);
    assert(error.cause instanceof (type as typeof Error), what);
  }
  const error = await rejection(
    pipeline(map(() => {
      throw "a string";
    })).run([1]).collect(),
  );
  assert(error instanceof PipelineError);
  assert.equal(error.cause, "a string");
  assert.match(error.message, /a string/);
});

Deno.test("PipelineError: a failure in a multi-task stage names the stage and the item it received", async () => {
  const p = pipeline(
    map((x: number) => x * 100),
    map([(x: number) => x + 1, (x: number) => {
      if (x === 201) throw new Error("second task");
      return x;
    }], { name: "two-step" }),
  );
  const error = await rejection(p.run([1, 2, 3]).collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.stage, "two-step");
  assert.equal(error.item, 200);
  assert.equal((error.cause as Error).message, "second task");
});

// ---- what a failure does to the rest of the run --------------------------------

Deno.test("run() on a failure stops calling stages: queued items never start", async () => {
  const started: number[] = [];
  const p = pipeline(
    map(async (x: number) => {
      started.push(x);
      await ticks(1);
      if (x === 1) throw new Error("early");
      return x;
    }, { concurrency: 2 }),
    map((x: number) => {
      started.push(100 + x);
      return x;
    }),
  );
  await rejection(p.run(range(100)).collect());
  await ticks();
  assert(started.length < 10, `started ${started}`);
});

Deno.test("run() the first failure wins: calls that reject because of the abort do not replace it", async () => {
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 0) {
      await ticks(2);
      throw new Error("first");
    }
    await whenAborted(ctx.signal);
    throw new Error(`later ${x}`);
  }, { concurrency: 3 }));
  const error = await rejection(p.run(range(3)).collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal((error.cause as Error).message, "first");
  assert.equal(error.item, 0);
});

Deno.test("run() two stages failing: the flow rejects with the failure that happened first", async () => {
  const p = pipeline(
    map(async (x: number) => {
      await sleep(x === 5 ? 40 : 0);
      if (x === 5) throw new Error("late, stage 1");
      return x;
    }, { concurrency: 6, name: "one" }),
    map((x: number) => {
      if (x === 1) throw new Error("early, stage 2");
      return x;
    }, { name: "two" }),
  );
  const error = await rejection(p.run(range(6)).collect());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.stage, "two");
});

// ---- delivery to consumers -----------------------------------------------------

Deno.test("run() a failure reaches a for await loop after the earlier results, in order", async () => {
  const p = pipeline(map(async (x: number) => {
    await sleep(x % 2);
    if (x === 6) throw new Error("six");
    return x;
  }, { concurrency: 3 }));
  const seen: number[] = [];
  const error = await rejection((async () => {
    for await (const x of p.run(range(20))) seen.push(x);
  })());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.item, 6);
  assert.deepEqual(seen, range(seen.length), "a prefix, in order");
  assert(seen.length <= 6);
});

Deno.test("run() a failure errors Flow.readable with the PipelineError", async () => {
  const reader = pipeline(map((x: number) => {
    if (x === 1) throw new Error("one");
    return x;
  })).run([0, 1, 2]).readable.getReader();
  let error: unknown;
  for (;;) {
    try {
      const r = await reader.read();
      if (r.done) break;
    } catch (e) {
      error = e;
      break;
    }
  }
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.item, 1);
  assert.equal(await rejection(reader.closed), error);
});

Deno.test("run() a failure before any consumer is delivered to the consumer that comes later, once", async () => {
  const flow = pipeline(map((x: number) => {
    if (x === 0) throw new Error("zero");
    return x;
  })).run([0, 1]);
  await until(() => flow.stats().done, "the run to settle");
  const it = flow[Symbol.asyncIterator]();
  const error = await rejection(it.next());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.item, 0);
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("run() a failure with no consumer at all leaves no unhandled rejection", async () => {
  const flow = pipeline(map(() => {
    throw new Error("nobody listens");
  })).run([1]);
  await until(() => flow.stats().done, "the run to settle");
  await ticks();
});

// ---- source errors -----------------------------------------------------------

Deno.test("run() a throwing generator source rejects the flow with that very error", async () => {
  const mine = new Error("generator broke");
  const source = (function* () {
    yield 1;
    yield 2;
    throw mine;
  })();
  const seen: number[] = [];
  const flow = pipeline(map((x: number) => x)).run(source);
  const error = await rejection((async () => {
    for await (const x of flow) seen.push(x);
  })());
  assert.equal(error, mine);
  // The run fails at once: items read before the error may be cancelled.
  assert.deepEqual(seen, [1, 2].slice(0, seen.length));
});

Deno.test("run() a rejecting async generator source rejects the flow with that very error", async () => {
  const mine = new TypeError("async generator broke");
  const source = (async function* () {
    yield 1;
    await sleep(1);
    throw mine;
  })();
  assert.equal(
    await rejection(pipeline(map((x: number) => x)).run(source).collect()),
    mine,
  );
});

Deno.test("run() an erroring ReadableStream source rejects the flow with that very error", async () => {
  const mine = new Error("stream broke");
  let i = 0;
  const source = new ReadableStream<number>({
    pull(controller) {
      if (i === 3) controller.error(mine);
      else controller.enqueue(i++);
    },
  });
  assert.equal(
    await rejection(pipeline(map((x: number) => x)).run(source).collect()),
    mine,
  );
  const throwing = new ReadableStream<number>({
    pull() {
      throw mine;
    },
  });
  assert.equal(
    await rejection(pipeline(map((x: number) => x)).run(throwing).collect()),
    mine,
  );
});

Deno.test("run() a source whose [Symbol.iterator]() throws rejects the flow with that error", async () => {
  const mine = new Error("cannot open");
  const source: Iterable<number> = {
    [Symbol.iterator]() {
      throw mine;
    },
  };
  assert.equal(
    await rejection(pipeline(map((x: number) => x)).run(source).collect()),
    mine,
  );
});

Deno.test("run() a source error aborts the in-flight calls and waits for them", async () => {
  const events: string[] = [];
  const mine = new Error("source broke");
  let started = 0;
  const source = (async function* () {
    yield 0;
    yield 1;
    await until(() => started === 2, "2 calls in flight");
    throw mine;
  })();
  const p = pipeline(map(async (x: number, ctx) => {
    started++;
    await whenAborted(ctx.signal);
    await sleep(10);
    events.push(`returned ${x}`);
    return x;
  }, { concurrency: 2 }));
  const error = await p.run(source).collect().catch((e) => {
    events.push("rejected");
    return e;
  });
  assert.equal(error, mine);
  assert.deepEqual(events.slice(0, 2).sort(), ["returned 0", "returned 1"]);
  assert.equal(events[2], "rejected");
});

Deno.test("run() an error from the id option rejects the flow and no stage sees the item", async () => {
  const mine = new Error("no id");
  const seen: number[] = [];
  const p = pipeline(map((x: number) => seen.push(x)));
  const error = await rejection(
    p.run([1, 2, 3], {
      id: (x) => {
        if (x === 2) throw mine;
        return x;
      },
    }).collect(),
  );
  // Either the error itself or a PipelineError caused by it.
  assert(
    error === mine || (error instanceof PipelineError && error.cause === mine),
    String(error),
  );
  assert(!seen.includes(2));
});

Deno.test("run() a stage failure closes an async generator source", async () => {
  const { source, probe } = asyncSource(1000); // finite: a swallowed failure ends, not hangs
  const error = await rejection(
    pipeline(map((x: number) => {
      if (x === 3) throw new Error("three");
      return x;
    })).run(source, { bufferSize: 2 }).collect(),
  );
  assert(error instanceof PipelineError);
  await until(() => probe.closed, "the generator's finally");
});

Deno.test("run() a stage failure cancels a ReadableStream source with the PipelineError", async () => {
  const { source, probe } = streamSource(1000);
  const error = await rejection(
    pipeline(map((x: number) => {
      if (x === 3) throw new Error("three");
      return x;
    })).run(source, { bufferSize: 2 }).collect(),
  );
  assert(error instanceof PipelineError);
  await until(() => probe.closed, "the stream's cancel");
  assert.equal(probe.cancelReason, error);
});
