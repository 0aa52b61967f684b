// pipeline(): names, reuse across runs, zero stages, argument checks,
// transform(), and the validation of run() options.
import assert from "node:assert/strict";
import {
  batch,
  filter,
  flatten,
  map,
  pipeline,
  PipelineError,
  type Stage,
} from "../mod.ts";
import {
  asyncSource,
  deferred,
  range,
  rejection,
  sleep,
  syncSource,
  ticks,
  until,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";

// ---- names -------------------------------------------------------------------

Deno.test("pipeline() names stages <kind>#<position>, counting from 1", async () => {
  const stages: string[] = [];
  const record = (x: number, ctx: { stage: string }) => {
    stages.push(ctx.stage);
    return x;
  };
  const p = pipeline(
    map(record),
    filter((x: number, ctx) => record(x, ctx) >= 0),
    batch<number>({ maxSize: 2 }),
    flatten<number>(),
    map(record),
  );
  assert.deepEqual(p.names, [
    "map#1",
    "filter#2",
    "batch#3",
    "flatten#4",
    "map#5",
  ]);
  assert.deepEqual(await p.run([1]).collect(), [1]);
  assert.deepEqual(stages, ["map#1", "filter#2", "map#5"]);
  assert.deepEqual(
    await (async () => {
      const flow = p.run([1]);
      await flow.collect();
      return flow.stats().stages.map((s) => s.name);
    })(),
    p.names,
  );
});

Deno.test("pipeline() uses the name option where given and <kind>#<position> elsewhere", async () => {
  const p = pipeline(
    map((x: number) => x, { name: "fetch" }),
    batch<number>({ maxSize: 2, name: "group" }),
    flatten<number>({ name: "ungroup" }),
    filter((x: number) => x > 0),
    map((x: number) => {
      if (x === 2) throw new Error("boom");
      return x;
    }),
  );
  assert.deepEqual(p.names, ["fetch", "group", "ungroup", "filter#4", "map#5"]);
  const error = await rejection(p.run([1, 2, 3]).collect());
  assert(error instanceof PipelineError);
  assert.equal(error.stage, "map#5");
});

Deno.test("pipeline() accepts the same stage object twice, named by position", async () => {
  const inc = map((x: number) => x + 1);
  const p = pipeline(inc, inc, inc);
  assert.deepEqual(p.names, ["map#1", "map#2", "map#3"]);
  assert.deepEqual(await p.run([0, 10]).collect(), [3, 13]);
  const q = pipeline(map((x: number) => x * 2), inc);
  assert.deepEqual(q.names, ["map#1", "map#2"]);
  assert.deepEqual(await q.run([1]).collect(), [3]);
});

Deno.test("pipeline() keeps its stages and names frozen", () => {
  const p = pipeline(map((x: number) => [x]), flatten());
  assert.equal(Object.isFrozen(p.stages), true);
  assert.equal(Object.isFrozen(p.names), true);
  assert.equal(p.stages.length, 2);
});

// ---- zero stages -------------------------------------------------------------

Deno.test("pipeline() with zero stages passes items through", async () => {
  const p = pipeline<number>();
  assert.deepEqual(p.names, []);
  assert.deepEqual(await p.run([3, 1, 2]).collect(), [3, 1, 2]);
  assert.deepEqual(
    await p.run(asyncSource(4).source, { order: "completion" }).collect(),
    [0, 1, 2, 3],
  );
  const out: number[] = [];
  for await (const x of p.run(new Set([5, 6]))) out.push(x);
  assert.deepEqual(out, [5, 6]);
  const flow = p.run(range(3));
  await flow.collect();
  assert.equal(flow.stats().itemsIn, 3);
  assert.equal(flow.stats().itemsOut, 3);
});

Deno.test("pipeline() with zero stages still reads lazily, within bufferSize", async () => {
  const { source, probe } = syncSource();
  const flow = pipeline<number>().run(source, { bufferSize: 5 });
  await ticks();
  assert.equal(probe.pulled, 5);
  const seen: number[] = [];
  for await (const x of flow) {
    seen.push(x);
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(probe.closed, true);
});

// ---- arguments ---------------------------------------------------------------

const notStages: [string, unknown][] = [
  ["a function", (x: number) => x],
  ["null", null],
  ["undefined", undefined],
  ["a number", 3],
  ["an empty object", {}],
  ["an object with an unknown kind", { spec: { kind: "reduce" } }],
];

for (const [what, value] of notStages) {
  Deno.test(`pipeline() throws a TypeError naming the argument when it is ${what}`, () => {
    assert.throws(
      () => pipeline(map((x: number) => x), value as Stage<number, number>),
      (error: unknown) => {
        assert(error instanceof TypeError, String(error));
        assert.match(error.message, /stages\[1\]/);
        return true;
      },
    );
  });
}

// ---- reuse -------------------------------------------------------------------

Deno.test("pipeline() is reusable: runs one after the other give the same results", async () => {
  const p = pipeline(
    map((x: number) => Promise.resolve(x * 2), { concurrency: 3 }),
    batch<number>({ maxSize: 2 }),
  );
  const first = await p.run(range(5)).collect();
  const second = await p.run(range(5)).collect();
  assert.deepEqual(first, [[0, 2], [4, 6], [8]]);
  assert.deepEqual(second, first);
});

Deno.test("pipeline() runs two runs at once independently", async () => {
  const p = pipeline(
    map(async (x: number) => {
      await sleep(x % 3);
      return x;
    }, { concurrency: 2 }),
    batch<number>({ maxSize: 3 }),
    map((xs: number[]) => xs.reduce((a, b) => a + b, 0)),
  );
  const a = p.run(range(9));
  const b = p.run(range(9).map((x) => x * 100));
  const [ra, rb] = await Promise.all([a.collect(), b.collect()]);
  assert.deepEqual(ra, [3, 12, 21]);
  assert.deepEqual(rb, [300, 1200, 2100]);
  assert.equal(a.stats().itemsIn, 9);
  assert.equal(b.stats().itemsIn, 9);
});

Deno.test("pipeline() aborting one run leaves another run of it going", async () => {
  const gate = deferred();
  const p = pipeline(map(async (x: number, ctx) => {
    if (ctx.context === "stuck") {
      await whenAborted(ctx.signal);
    } else await gate.promise;
    return x;
  }, { concurrency: 2 }));
  const stuck = p.run(range(5), { context: "stuck" });
  const going = p.run(range(5), { context: "going" });
  const stuckResult = rejection(stuck.collect());
  const goingResult = going.collect();
  await ticks();
  const reason = new Error("stop one");
  await stuck.abort(reason);
  assert.equal(await stuckResult, reason);
  assert.equal(going.stats().done, false);
  gate.resolve();
  assert.deepEqual(await goingResult, range(5));
});

Deno.test("pipeline() a failing run does not affect the next run", async () => {
  let fail = true;
  const p = pipeline(map((x: number) => {
    if (fail && x === 1) throw new Error("once");
    return x;
  }));
  assert(await rejection(p.run([0, 1, 2]).collect()) instanceof PipelineError);
  fail = false;
  assert.deepEqual(await p.run([0, 1, 2]).collect(), [0, 1, 2]);
});

// ---- transform() -------------------------------------------------------------

Deno.test("Pipeline.transform() returns a fresh pair each time", async () => {
  const p = pipeline(map((s: string) => s.toUpperCase()));
  const t1 = p.transform();
  const t2 = p.transform();
  assert.notEqual(t1.readable, t2.readable);
  assert.notEqual(t1.writable, t2.writable);
  const [a, b] = await Promise.all([
    Array.fromAsync(ReadableStream.from(["a", "b"]).pipeThrough(t1)),
    Array.fromAsync(ReadableStream.from(["c"]).pipeThrough(t2)),
  ]);
  assert.deepEqual(a, ["A", "B"]);
  assert.deepEqual(b, ["C"]);
});

Deno.test("Pipeline.transform() passes run options: order and context", async () => {
  const p = pipeline(map(async (ms: number, ctx) => {
    await sleep(ms);
    return `${ctx.context}${ms}`;
  }, { concurrency: 3 }));
  const out = await Array.fromAsync(
    ReadableStream.from([40, 1, 15]).pipeThrough(
      p.transform({ order: "completion", context: "t" }),
    ),
  );
  assert.deepEqual(out, ["t1", "t15", "t40"]);
});

Deno.test("Pipeline.transform() reads what is written through the writable side", async () => {
  const { writable, readable } = pipeline(map((x: number) => x + 1))
    .transform();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const writes = (async () => {
    await writer.write(1);
    await writer.write(2);
    await writer.close();
  })();
  assert.deepEqual(await reader.read(), { done: false, value: 2 });
  assert.deepEqual(await reader.read(), { done: false, value: 3 });
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  await writes;
});

Deno.test("Pipeline.transform(): cancelling the readable cancels the run and the upstream source", async () => {
  let cancelled: unknown = undefined;
  let i = 0;
  const upstream = new ReadableStream<number>({
    pull(controller) {
      controller.enqueue(i++);
    },
    cancel(reason) {
      cancelled = reason ?? "cancelled";
    },
  });
  let aborted = 0;
  let waiting = 0;
  const p = pipeline(map(async (x: number, ctx) => {
    if (x > 0) {
      waiting++;
      await whenAborted(ctx.signal);
      aborted++;
    }
    return x;
  }, { concurrency: 2 }));
  const reader = upstream.pipeThrough(p.transform()).getReader();
  assert.deepEqual(await reader.read(), { done: false, value: 0 });
  await until(() => waiting === 2, "2 calls in flight");
  await reader.cancel("enough");
  assert.equal(aborted, 2);
  await withTimeout(
    until(() => cancelled !== undefined, "the upstream cancel"),
    5000,
    "upstream cancel",
  );
});

Deno.test("Pipeline.transform(): a stage failure errors the readable with a PipelineError and cancels the upstream source", async () => {
  let cancelled: unknown = undefined;
  let i = 0;
  const upstream = new ReadableStream<number>({
    pull(controller) {
      // Finite: were the failure swallowed, the test ends instead of hanging.
      if (i === 1000) controller.close();
      else controller.enqueue(i++);
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const p = pipeline(map((x: number) => {
    if (x === 3) throw new Error("bad item");
    return x;
  }, { name: "check" }));
  const seen: number[] = [];
  const error = await rejection((async () => {
    for await (const x of upstream.pipeThrough(p.transform())) seen.push(x);
  })());
  assert(error instanceof PipelineError, String(error));
  assert.equal(error.stage, "check");
  assert.equal(error.item, 3);
  assert.deepEqual(seen, [0, 1, 2]);
  await withTimeout(
    until(() => cancelled !== undefined, "the upstream cancel"),
    5000,
    "upstream cancel",
  );
});

Deno.test("Pipeline.transform(): aborting the writable fails the run with that reason", async () => {
  const { writable, readable } = pipeline(map((x: number) => x)).transform();
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const reason = new Error("producer gave up");
  await writer.write(1);
  assert.deepEqual(await reader.read(), { done: false, value: 1 });
  await writer.abort(reason);
  assert.equal(await rejection(reader.read()), reason);
});

// ---- run() options -----------------------------------------------------------

const p1 = pipeline(map((x: number) => x));

function throwsNaming(
  fn: () => unknown,
  type: typeof TypeError | typeof RangeError,
  name: string,
): void {
  assert.throws(fn, (error: unknown) => {
    assert(error instanceof type, `${error} is not a ${type.name}`);
    assert.match(error.message, new RegExp(`'${name}'`));
    assert.match(error.message, /current value is/);
    return true;
  });
}

for (
  const [what, source] of [
    ["a number", 5],
    ["null", null],
    ["undefined", undefined],
    ["a plain object", {}],
    ["an iterator without Symbol.iterator", { next: () => ({ done: true }) }],
    ["a promise", Promise.resolve([1])],
  ] as const
) {
  Deno.test(`run() throws a TypeError naming 'source' when it is ${what}`, () => {
    throwsNaming(() => p1.run(source as never), TypeError, "source");
  });
}

Deno.test("run() throws a TypeError naming 'order' for an unknown order", () => {
  throwsNaming(
    () => p1.run([1], { order: "random" as "input" }),
    TypeError,
    "order",
  );
  throwsNaming(() => p1.run([1], { order: 1 as never }), TypeError, "order");
});

for (const bad of [-1, 1.5, NaN, -Infinity]) {
  Deno.test(`run() throws a RangeError naming 'bufferSize' for ${bad}`, () => {
    throwsNaming(
      () => p1.run([1], { bufferSize: bad }),
      RangeError,
      "bufferSize",
    );
  });
}

Deno.test("run() throws a TypeError naming 'bufferSize' for a string", () => {
  throwsNaming(
    () => p1.run([1], { bufferSize: "8" as never }),
    TypeError,
    "bufferSize",
  );
});

Deno.test("run() throws a TypeError naming 'signal' when it is not an AbortSignal", () => {
  throwsNaming(
    () => p1.run([1], { signal: new AbortController() as never }),
    TypeError,
    "signal",
  );
  throwsNaming(
    () => p1.run([1], { signal: { aborted: false } as never }),
    TypeError,
    "signal",
  );
});

Deno.test("run() throws a TypeError naming 'id' when it is not a function", () => {
  throwsNaming(() => p1.run([1], { id: 5 as never }), TypeError, "id");
  throwsNaming(() => p1.run([1], { id: "key" as never }), TypeError, "id");
});

Deno.test("run() throws a TypeError naming 'options' when they are not an object", () => {
  throwsNaming(() => p1.run([1], 5 as never), TypeError, "options");
  throwsNaming(() => p1.run([1], "fast" as never), TypeError, "options");
});

Deno.test("run() with invalid options reads nothing", async () => {
  const { source, probe } = syncSource();
  assert.throws(() => p1.run(source, { bufferSize: -1 }), RangeError);
  await ticks();
  assert.equal(probe.opened, 0);
  assert.equal(probe.pulled, 0);
});

Deno.test("run() accepts bufferSize 0 and still completes", async () => {
  const p = pipeline(
    map((x: number) => Promise.resolve(x), { concurrency: 2 }),
    batch<number>({ maxSize: 2 }),
    flatten<number>(),
  );
  assert.deepEqual(
    await p.run(range(7), { bufferSize: 0 }).collect(),
    range(7),
  );
});
