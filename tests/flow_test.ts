// One run: sources, laziness, the read-ahead budget, consumers, cancellation
// and reused item tokens (Flow.stats() is in stats_test.ts). Counts and orders
// are asserted, never durations.
import assert from "node:assert/strict";
import {
  batch,
  type Flow,
  map,
  pipeline,
  type Source,
  type TaskContext,
} from "../mod.ts";
import {
  asyncSource,
  deferred,
  isSettled,
  range,
  rejection,
  sleep,
  streamSource,
  syncSource,
  ticks,
  trackedSignal,
  until,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";

const identity = <T>(x: T): T => x;

// ---- sources ---------------------------------------------------------------

const kinds: [string, () => Source<number>][] = [
  ["an array", () => [1, 2, 3]],
  ["a Set", () => new Set([1, 2, 3])],
  ["a Map iterator", () => new Map([["a", 1], ["b", 2], ["c", 3]]).values()],
  ["a typed array", () => new Int16Array([1, 2, 3])],
  ["a generator", function* () {
    yield 1;
    yield 2;
    yield 3;
  }],
  ["an async generator", async function* () {
    yield 1;
    await sleep(1);
    yield 2;
    yield 3;
  }],
  // A ReadableStream source: tests/cross/cases.ts, on every runtime.
  ["a custom iterable without return()", () => ({
    [Symbol.iterator]() {
      let i = 0;
      return {
        next: () =>
          i < 3
            ? { done: false, value: ++i }
            : { done: true, value: undefined },
      } as Iterator<number>;
    },
  })],
  ["a custom async iterable without return()", () => ({
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        next: () =>
          Promise.resolve(
            i < 3
              ? { done: false, value: ++i }
              : { done: true, value: undefined },
          ),
      } as AsyncIterator<number>;
    },
  })],
];

for (const [kind, make] of kinds) {
  Deno.test(`run() reads ${kind} in order`, async () => {
    const p = pipeline(
      map((x: number) => Promise.resolve(x * 10), { concurrency: 2 }),
    );
    assert.deepEqual(await p.run(make()).collect(), [10, 20, 30]);
  });
}

Deno.test("run() reads a string as its code points", async () => {
  const p = pipeline(map((c: string) => c.toUpperCase()));
  assert.deepEqual(await p.run("ab😀c").collect(), ["A", "B", "😀", "C"]);
});

Deno.test("run() reads an empty source and ends with no result", async () => {
  const p = pipeline(map((x: number) => x));
  assert.deepEqual(await p.run([]).collect(), []);
  assert.deepEqual(await p.run(streamSource(0).source).collect(), []);
  assert.deepEqual(await p.run(asyncSource(0).source).collect(), []);
});

Deno.test("run() with an endless generator: break after N ends the loop and runs the generator's finally", async () => {
  const { source, probe } = syncSource();
  const seen: number[] = [];
  const flow = pipeline(map((x: number) => x * 2, { concurrency: 3 }))
    .run(source, { bufferSize: 8 });
  for await (const x of flow) {
    seen.push(x);
    if (seen.length === 20) break;
  }
  assert.deepEqual(seen, range(20).map((x) => x * 2));
  assert.equal(probe.closed, true, "the generator's finally ran");
  // Read no further than what was taken plus the budget.
  assert(probe.pulled <= 20 + 8 + 3, `pulled ${probe.pulled}`);
  assert.equal(flow.stats().done, true);
});

Deno.test("run() with an endless async generator: break after N ends the loop and runs the generator's finally", async () => {
  const { source, probe } = asyncSource();
  const seen: number[] = [];
  for await (
    const x of pipeline(
      map((x: number) => Promise.resolve(x + 1), { concurrency: 2 }),
    )
      .run(source, { bufferSize: 4 })
  ) {
    seen.push(x);
    if (seen.length === 10) break;
  }
  assert.deepEqual(seen, range(10).map((x) => x + 1));
  await withTimeout(
    until(() => probe.closed, "the generator's finally"),
    5000,
    "finally",
  );
  assert(probe.pulled <= 10 + 4 + 2 + 1, `pulled ${probe.pulled}`);
});

// ---- laziness --------------------------------------------------------------

for (
  const [kind, make] of [
    ["a generator", syncSource],
    ["an async generator", asyncSource],
    ["a ReadableStream", streamSource],
  ] as const
) {
  Deno.test(`run() returns at once: ${kind} is not read and no stage runs before the caller's synchronous code has finished`, async () => {
    const { source, probe } = make(5);
    let calls = 0;
    const flow = pipeline(map((x: number) => {
      calls++;
      return x;
    })).run(source);
    assert.equal(probe.pulled, 0, "no pull yet");
    assert.equal(probe.opened, 0, "not even opened");
    assert.equal(calls, 0, "no stage call yet");
    assert.equal(flow.stats().itemsIn, 0);
    // ...and it starts by itself, without a consumer.
    await until(() => calls > 0, "the first stage call");
    assert(probe.pulled > 0);
    assert.deepEqual(await flow.collect(), range(5));
  });
}

// ---- read-ahead budget -------------------------------------------------------

for (const [bufferSize, concurrency] of [[0, 1], [3, 1], [5, 3], [16, 4]]) {
  Deno.test(`run() bufferSize ${bufferSize}, concurrency ${concurrency}: with no consumer the source is read exactly bufferSize + concurrency ahead, and each result taken frees one read`, async () => {
    const { source, probe } = syncSource();
    const p = pipeline(map(identity<number>, { concurrency }));
    const flow = p.run(source, { bufferSize });
    const bound = bufferSize + concurrency;
    await ticks();
    assert.equal(probe.pulled, bound);
    await ticks();
    assert.equal(probe.pulled, bound, "stays there");
    const it = flow[Symbol.asyncIterator]();
    for (let k = 1; k <= 3; k++) {
      assert.deepEqual(await it.next(), { done: false, value: k - 1 });
      await ticks();
      assert.equal(probe.pulled, bound + k);
    }
    await it.return!();
    assert.equal(probe.closed, true);
  });
}

for (
  const [kind, make] of [
    ["an async generator", asyncSource],
    ["a ReadableStream", streamSource],
  ] as const
) {
  Deno.test(`run() bufferSize: ${kind} is read no further than bufferSize + concurrency ahead`, async () => {
    const { source, probe } = make();
    const flow = pipeline(
      map((x: number) => Promise.resolve(x), { concurrency: 2 }),
    )
      .run(source, { bufferSize: 5 });
    await until(() => probe.pulled >= 7, "7 reads");
    await ticks(10);
    assert.equal(probe.pulled, 7);
    const it = flow[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { done: false, value: 0 });
    await until(() => probe.pulled >= 8, "one more read");
    await ticks(10);
    assert.equal(probe.pulled, 8);
    await it.return!();
    assert.equal(probe.closed, true);
  });
}

Deno.test("run() bufferSize bounds the calls in flight of a concurrency: Infinity stage", async () => {
  const { source, probe } = syncSource();
  const gate = deferred();
  let inFlight = 0;
  const flow = pipeline(map(async (x: number) => {
    inFlight++;
    await gate.promise;
    inFlight--;
    return x;
  }, { concurrency: Infinity })).run(source, { bufferSize: 10 });
  await ticks();
  assert.equal(probe.pulled, 10);
  assert.equal(inFlight, 10);
  assert.equal(flow.stats().running, 10);
  const stopped = flow.abort();
  gate.resolve();
  await stopped;
  assert.equal(inFlight, 0);
});

Deno.test("run() bufferSize counts a forming batch in source items: read-ahead is bufferSize + concurrency + maxSize", async () => {
  const { source, probe } = syncSource();
  const flow = pipeline(
    map(identity<number>, { concurrency: 2 }),
    batch<number>({ maxSize: 4 }),
  ).run(source, { bufferSize: 3 });
  await ticks();
  assert.equal(probe.pulled, 3 + 2 + 4);
  const it = flow[Symbol.asyncIterator]();
  assert.deepEqual(await it.next(), { done: false, value: [0, 1, 2, 3] });
  await ticks();
  // Taking a batch of 4 frees 4 reads.
  assert.equal(probe.pulled, 3 + 2 + 4 + 4);
  await it.return!();
});

/** A map of concurrency 3 whose call on item 0 waits for `head`; counts calls. */
function stuckHead() {
  const head = deferred();
  const calls = { n: 0 };
  const p = pipeline(map(async (x: number) => {
    calls.n++;
    if (x === 0) await head.promise;
    return x;
  }, { concurrency: 3 }));
  return { head, calls, p };
}

Deno.test("run() input order: a stuck head item stops the source at bufferSize + concurrency, then everything completes in order", async () => {
  const { head, calls, p } = stuckHead();
  const { source, probe } = syncSource(50);
  const flow = p.run(source, { bufferSize: 4 });
  const it = flow[Symbol.asyncIterator]();
  const first = it.next();
  await ticks(10);
  assert.equal(probe.pulled, 4 + 3);
  assert.equal(calls.n, 7);
  assert.equal(await isSettled(first), false, "nothing overtakes item 0");
  head.resolve();
  assert.deepEqual(await first, { done: false, value: 0 });
  const rest: number[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) {
    rest.push(r.value);
  }
  assert.deepEqual(rest, range(50).slice(1));
  assert.equal(probe.pulled, 50);
});

Deno.test("run() completion order: a stuck item does not hold back the others", async () => {
  const stuck = deferred();
  const p = pipeline(map(async (x: number) => {
    if (x === 0) await stuck.promise;
    return x;
  }, { concurrency: 3 }));
  const flow = p.run(range(50), { order: "completion", bufferSize: 4 });
  const it = flow[Symbol.asyncIterator]();
  const others = new Set<number>();
  for (let k = 0; k < 49; k++) {
    const r = await it.next();
    assert.equal(r.done, false);
    others.add(r.value);
  }
  assert.deepEqual([...others].sort((a, b) => a - b), range(50).slice(1));
  const last = it.next();
  assert.equal(await isSettled(last), false);
  stuck.resolve();
  assert.deepEqual(await last, { done: false, value: 0 });
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("run() keeps memory flat: 200k items never have more than bufferSize + concurrency read and not yet yielded", async () => {
  const N = 200_000;
  const bufferSize = 64;
  const concurrency = 4;
  let pulled = 0;
  let requested = 0; // next() calls so far: at least the results yielded
  let maxAhead = 0;
  const source = {
    *[Symbol.iterator]() {
      for (let i = 0; i < N; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - requested);
        yield i;
      }
    },
  };
  const flow = pipeline(
    map((x: number) => Promise.resolve(x + 1), { concurrency }),
  )
    .run(source, { bufferSize });
  const it = flow[Symbol.asyncIterator]();
  let expected = 1;
  for (;;) {
    requested++;
    const r = await it.next();
    if (r.done) break;
    assert.equal(r.value, expected++);
    if (expected % 2000 === 0) await sleep(0); // a slow spell
  }
  assert.equal(expected, N + 1);
  assert.equal(pulled, N);
  assert.equal(maxAhead, bufferSize + concurrency);
});

// ---- consumers ---------------------------------------------------------------

Deno.test("Flow.collect() resolves with every result in input order", async () => {
  const p = pipeline(map(async (x: number) => {
    await sleep((7 - x) % 4);
    return x * x;
  }, { concurrency: 4 }));
  assert.deepEqual(await p.run(range(8)).collect(), range(8).map((x) => x * x));
});

Deno.test("Flow.collect() through maps only puts results in input order whatever order they complete in, for arrays and iterables", async () => {
  // Completion order is reversed within each group of 4.
  const fn = async (x: number) => {
    await sleep(3 - (x % 4));
    return -x;
  };
  const want = range(37).map((x) => -x);
  const p = pipeline(map(fn, { concurrency: 4 }), map((x: number) => x));
  assert.deepEqual(await p.run(range(37)).collect(), want);
  assert.deepEqual(await p.run(syncSource(37).source).collect(), want);
  assert.deepEqual(await p.run(asyncSource(37).source).collect(), want);
  assert.deepEqual(await p.run(streamSource(37).source).collect(), want);
  const completion = await p.run(range(37), { order: "completion" }).collect();
  assert.equal(completion.length, 37);
  assert.notDeepEqual(completion, want, "completion order differs");
  assert.deepEqual(completion.toSorted((a, b) => b - a), want);
});

Deno.test("Flow.collect() with skipped items keeps the others in input order, with no gaps", async () => {
  const skip = new Set([0, 3, 4, 9, 20, 21, 22, 39]);
  const p = pipeline(
    map(async (x: number) => {
      await sleep(x % 3);
      if (skip.has(x)) throw new Error(`no ${x}`);
      return x;
    }, { concurrency: 5, onError: "skip" }),
  );
  for (const source of [range(40), syncSource(40).source]) {
    const flow = p.run(source);
    const out = await flow.collect();
    assert.deepEqual(out, range(40).filter((x) => !skip.has(x)));
    assert.deepEqual(
      flow.failures.map((f) => f.index).toSorted((a, b) => a - b),
      [...skip],
    );
    const stats = flow.stats();
    assert.equal(stats.itemsOut, 32);
    assert.equal(stats.skipped, 8);
    assert.equal(stats.inFlight, 0);
  }
  const all = pipeline(map(() => {
    throw new Error("none");
  }, { onError: "skip" })).run(range(5));
  assert.deepEqual(await all.collect(), []);
});

Deno.test("Flow.collect() through maps only is not held back by a slow head item: later items keep being read and run", async () => {
  const { head, calls, p } = stuckHead();
  const { source, probe } = syncSource(50);
  const collected = p.run(source, { bufferSize: 4 }).collect();
  await until(() => calls.n === 50, "every item called");
  assert.equal(probe.pulled, 50);
  assert.equal(await isSettled(collected), false, "item 0 is still running");
  head.resolve();
  assert.deepEqual(await collected, range(50));
});

Deno.test("Flow.collect() called once the run has started still returns every result in input order", async () => {
  const p = pipeline(map(async (x: number) => {
    await sleep(x % 2);
    return x;
  }, { concurrency: 3 }));
  for (const order of ["input", "completion"] as const) {
    const flow = p.run(range(30), { order, bufferSize: 4 });
    await sleep(2);
    assert(flow.stats().itemsIn > 0, "the run has started");
    const out = await flow.collect();
    if (order === "input") assert.deepEqual(out, range(30));
    else assert.deepEqual(out.toSorted((a, b) => a - b), range(30));
  }
});

// collect() through one plain map over a synchronous source: a worker places
// its result and carries its next item on the same token (W1's fast path).
// These pin what must still hold on it.

Deno.test("Flow.collect() through one map: a listener added mid-run gets every later item's events, and the counts balance", async () => {
  const N = 2_000;
  for (const from of ["source", "stage"] as const) {
    const seen = new Set<number>();
    const listen = () =>
      from === "source"
        ? flow.addEventListener("queued", (e) => seen.add(e.detail.index))
        : flow.addEventListener("completed", (e) => seen.add(e.detail.index));
    const p = pipeline(map((x: number) => {
      if (from === "stage" && x === 1_000) listen();
      return Promise.resolve(x * 2);
    }, { concurrency: 4 }));
    const source = function* () {
      for (let i = 0; i < N; i++) {
        // From the source: the item being read gets its "queued" too.
        if (from === "source" && i === 1_000) listen();
        yield i;
      }
    };
    const flow: Flow<number> = p.run(source(), { bufferSize: 16 });
    assert.deepEqual(await flow.collect(), range(N).map((x) => x * 2));
    // From the stage: bufferSize + concurrency items may be read ahead.
    const first = from === "source" ? 1_000 : 1_021;
    for (let i = first; i < N; i++) {
      assert.ok(seen.has(i), `${from}: no event for item ${i}`);
    }
    const s = flow.stats();
    assert.equal(s.itemsIn, N);
    assert.equal(s.itemsOut, N);
    assert.equal(s.inFlight, 0);
    assert.equal(s.stages[0].completed, N);
  }
});

Deno.test("Flow.collect() through one map: lowering the concurrency mid-run holds from then on", async () => {
  let active = 0;
  let maxAfter = 0;
  let lowered = false;
  const p = pipeline(map(async (x: number) => {
    if (x === 200 && !lowered) {
      lowered = true;
      flow.setConcurrency("work", 2);
    }
    active++;
    // Calls started after the lowering's first two releases are counted.
    if (lowered && x > 260) maxAfter = Math.max(maxAfter, active);
    await Promise.resolve();
    active--;
    return x;
  }, { concurrency: 8, name: "work" }));
  const flow: Flow<number> = p.run(range(1_000));
  assert.deepEqual(await flow.collect(), range(1_000));
  assert.ok(maxAfter >= 1 && maxAfter <= 2, `${maxAfter} calls at once`);
});

Deno.test("Flow.collect() through one map: a synchronous source that throws, or stops the run, mid-way rejects and leaves the counts balanced", async () => {
  const boom = new Error("boom");
  const controller = new AbortController();
  for (const how of ["throws", "aborts"] as const) {
    const signal = how === "aborts" ? controller.signal : undefined;
    const source = function* () {
      for (let i = 0; i < 300; i++) yield i;
      if (how === "throws") throw boom;
      controller.abort(boom);
      yield 300;
    };
    const flow = pipeline(map((x: number) => Promise.resolve(x), {
      concurrency: 4,
    })).run(source(), { signal });
    assert.equal(await rejection(flow.collect()), boom);
    const s = flow.stats();
    assert.equal(
      s.itemsIn,
      s.itemsOut + s.cancelled + s.inFlight,
      `${how}: ${JSON.stringify(s)}`,
    );
    assert.equal(s.inFlight, 0, how);
  }
});

Deno.test("Flow [Symbol.asyncIterator] yields each result as soon as it and every earlier item are done", async () => {
  const gate = deferred();
  const p = pipeline(map(async (x: number) => {
    if (x === 3) await gate.promise;
    return x;
  }, { concurrency: 4 }));
  const it = p.run(range(6))[Symbol.asyncIterator]();
  for (const x of [0, 1, 2]) {
    assert.deepEqual(await it.next(), { done: false, value: x });
  }
  const fourth = it.next();
  assert.equal(await isSettled(fourth), false);
  gate.resolve();
  assert.deepEqual(await fourth, { done: false, value: 3 });
  assert.deepEqual(await it.next(), { done: false, value: 4 });
  assert.deepEqual(await it.next(), { done: false, value: 5 });
  assert.deepEqual(await it.next(), { done: true, value: undefined });
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("Flow.readable reads the results with for await, and is the same stream each time", async () => {
  const flow = pipeline(map((x: number) => x - 1)).run([1, 2, 3]);
  assert.equal(flow.readable, flow.readable);
  const out: number[] = [];
  for await (const x of flow.readable) out.push(x);
  assert.deepEqual(out, [0, 1, 2]);
});

Deno.test("Flow.readable has no read-ahead of its own: only bufferSize + concurrency are read", async () => {
  const { source, probe } = syncSource();
  const flow = pipeline(map(identity<number>, { concurrency: 2 }))
    .run(source, { bufferSize: 3 });
  const reader = flow.readable.getReader();
  await ticks();
  assert.equal(probe.pulled, 5);
  assert.deepEqual(await reader.read(), { done: false, value: 0 });
  await ticks();
  assert.equal(probe.pulled, 6);
  await reader.cancel();
  assert.equal(probe.closed, true);
});

const consumers: Record<
  string,
  (
    flow: AsyncIterable<number> & {
      collect(): Promise<number[]>;
      readonly readable: ReadableStream<number>;
    },
  ) => Promise<number[]>
> = {
  "collect()": (flow) => flow.collect(),
  "for await": (flow) => {
    const it = flow[Symbol.asyncIterator]();
    return (async () => {
      const out: number[] = [];
      for (let r = await it.next(); !r.done; r = await it.next()) {
        out.push(r.value);
      }
      return out;
    })();
  },
  "readable": (flow) => {
    const reader = flow.readable.getReader();
    return (async () => {
      const out: number[] = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        out.push(r.value);
      }
      return out;
    })();
  },
};

for (const [first, consume] of Object.entries(consumers)) {
  for (const [second, consumeAgain] of Object.entries(consumers)) {
    if (first === "readable" && second === "readable") continue; // same stream
    Deno.test(`Flow has one consumer: ${second} after ${first} throws a TypeError and leaves the first consumer alone`, async () => {
      const flow = pipeline(map((x: number) => Promise.resolve(x + 1))).run([
        1,
        2,
        3,
      ]);
      const results = consume(flow);
      assert.throws(() => consumeAgain(flow), TypeError);
      assert.deepEqual(await results, [2, 3, 4]);
      assert.throws(() => consumeAgain(flow), TypeError);
    });
  }
}

// ---- ids and context ---------------------------------------------------------

Deno.test("run() id sets ctx.itemId, called once per item with (item, index)", async () => {
  const idCalls: [string, number][] = [];
  const seen: unknown[] = [];
  const p = pipeline(
    map((s: string, ctx) => {
      seen.push([ctx.index, ctx.itemId]);
      return s;
    }),
    map((s: string, ctx) => {
      seen.push([ctx.index, ctx.itemId]);
      return s;
    }),
  );
  await p.run(["a", "b", "c"], {
    id: (item, index) => {
      idCalls.push([item, index]);
      return `id-${item}`;
    },
  }).collect();
  assert.deepEqual(idCalls, [["a", 0], ["b", 1], ["c", 2]]);
  assert.deepEqual(
    seen.sort(),
    [
      [0, "id-a"],
      [0, "id-a"],
      [1, "id-b"],
      [1, "id-b"],
      [2, "id-c"],
      [2, "id-c"],
    ],
  );
});

Deno.test("run() without id: ctx.itemId is the input index", async () => {
  const ids: unknown[] = [];
  await pipeline(map((_: string, ctx) => ids.push(ctx.itemId)))
    .run(["x", "y", "z"]).collect();
  assert.deepEqual(ids, [0, 1, 2]);
});

Deno.test("run() context is passed as ctx.context, fresh per run", async () => {
  const p = pipeline(map(async (x: number, ctx) => {
    await sleep(x % 2);
    return `${(ctx.context as { tag: string }).tag}${x}`;
  }, { concurrency: 2 }));
  const a = { tag: "a" };
  const b = { tag: "b" };
  const seen = new Set<unknown>();
  const spy = pipeline(map((x: number, ctx) => {
    seen.add(ctx.context);
    return x;
  }));
  const [ra, rb] = await Promise.all([
    p.run(range(4), { context: a }).collect(),
    p.run(range(4), { context: b }).collect(),
    spy.run([1, 2], { context: a }).collect(),
  ]);
  assert.deepEqual(ra, ["a0", "a1", "a2", "a3"]);
  assert.deepEqual(rb, ["b0", "b1", "b2", "b3"]);
  assert.equal(seen.size, 1);
  assert.equal([...seen][0], a, "the very object given");
  const none: unknown[] = [];
  await pipeline(map((_: number, ctx) => none.push(ctx.context)))
    .run([1]).collect();
  assert.deepEqual(none, [undefined]);
});

// ---- cancellation ------------------------------------------------------------

Deno.test("Flow.abort(reason) rejects the flow with that reason and aborts every in-flight ctx.signal with it", async () => {
  const signals: AbortSignal[] = [];
  const flow = pipeline(map(async (x: number, ctx) => {
    signals.push(ctx.signal);
    await whenAborted(ctx.signal);
    return x;
  }, { concurrency: 3 })).run(syncSource().source);
  const failure = rejection(flow.collect());
  await until(() => signals.length === 3, "3 calls in flight");
  const reason = new Error("stop");
  await flow.abort(reason);
  assert.equal(await failure, reason);
  assert.equal(signals.length, 3, "no call started after the abort");
  for (const s of signals) {
    assert.equal(s.aborted, true);
    assert.equal(s.reason, reason);
  }
});

Deno.test("Flow.abort() rejects a for await consumer and a readable consumer with the reason", async () => {
  const reason = new Error("stop");
  const slow = pipeline(map(async (x: number, ctx) => {
    await whenAborted(ctx.signal);
    return x;
  }));
  const a = slow.run([1]);
  const looping = rejection((async () => {
    for await (const _ of a) { /* never */ }
  })());
  const b = slow.run([1]);
  const reading = rejection(b.readable.getReader().read());
  await ticks();
  await Promise.all([a.abort(reason), b.abort(reason)]);
  assert.equal(await looping, reason);
  assert.equal(await reading, reason);
});

Deno.test("Flow.abort() settles the flow only after every in-flight call has returned", async () => {
  const events: string[] = [];
  let started = 0;
  const flow = pipeline(map(async (x: number) => {
    started++;
    await sleep(50); // ignores ctx.signal
    events.push(`returned ${x}`);
    return x;
  }, { concurrency: 3 })).run(range(10));
  const failure = flow.collect().catch(() => events.push("rejected"));
  await until(() => started === 3, "3 calls in flight");
  events.push("abort");
  await flow.abort(new Error("stop"));
  events.push("abort() resolved");
  await failure;
  assert.equal(started, 3, "no call started after the abort");
  assert.deepEqual(events.slice(0, 1), ["abort"]);
  assert.deepEqual(events.slice(1, 4).sort(), [
    "returned 0",
    "returned 1",
    "returned 2",
  ]);
  assert.deepEqual(events.slice(4).sort(), ["abort() resolved", "rejected"]);
});

Deno.test("Flow.abort() calls the source's return(): an async generator's finally runs before the flow settles", async () => {
  const { source, probe } = asyncSource();
  let started = 0;
  const flow = pipeline(map(async (x: number, ctx) => {
    started++;
    await whenAborted(ctx.signal);
    return x;
  })).run(source, { bufferSize: 1 });
  await until(() => started === 1, "a call in flight");
  await ticks();
  assert.equal(probe.pulled, 2, "budget full: no read pending");
  await flow.abort(new Error("stop"));
  assert.equal(probe.closed, true);
});

Deno.test("Flow.abort() calls the source iterator's return() exactly once", async () => {
  let returns = 0;
  let nexts = 0;
  const source: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => ({ done: false, value: nexts++ }),
      return: () => {
        returns++;
        return { done: true, value: undefined };
      },
    }),
  };
  let started = 0;
  const flow = pipeline(map(async (x: number, ctx) => {
    started++;
    await whenAborted(ctx.signal);
    return x;
  }, { concurrency: 2 })).run(source, { bufferSize: 2 });
  await until(() => started === 2, "2 calls in flight");
  await flow.abort(new Error("stop"));
  await flow.abort(new Error("again"));
  assert.equal(returns, 1);
});

Deno.test("Flow.abort() while a source read is pending: the async generator's finally still runs once that read settles", async () => {
  const { source, probe } = asyncSource(Infinity, 30);
  const flow = pipeline(map(identity<number>)).run(source);
  const failure = rejection(flow.collect());
  await ticks(); // the first read is pending (30 ms)
  assert.equal(probe.pulled, 0);
  await flow.abort(new Error("stop"));
  assert.equal((await failure as Error).message, "stop");
  await withTimeout(
    until(() => probe.closed, "the generator's finally"),
    5000,
    "finally",
  );
  assert.equal(probe.pulled, 1, "the pending read was the last one");
});

Deno.test("Flow.abort() while a read of a ReadableStream source is pending starts the stream's cancel() and settles without waiting for it", async () => {
  const events: string[] = [];
  const cancelDone = deferred();
  const source = new ReadableStream<number>({
    pull: () => new Promise(() => {}), // a read that waits for data
    async cancel() {
      events.push("cancel started");
      await sleep(30);
      events.push("cancel finished");
      cancelDone.resolve();
    },
  }, { highWaterMark: 0 });
  const flow = pipeline(map(identity<number>)).run(source);
  const failure = rejection(flow.collect());
  await ticks();
  await flow.abort(new Error("stop"));
  events.push("abort() resolved");
  await failure;
  await cancelDone.promise; // no leaked timer, whatever the order
  assert.deepEqual(events, [
    "cancel started",
    "abort() resolved",
    "cancel finished",
  ]);
});

Deno.test("Flow.abort() settles when the source's cleanup never finishes: a stream's cancel() or a generator's finally", async () => {
  const cancelled = deferred();
  const stream = new ReadableStream<number>({
    pull: (c) => c.enqueue(1),
    cancel() {
      cancelled.resolve();
      return new Promise(() => {}); // never settles
    },
  }, { highWaterMark: 0 });
  const entered = deferred();
  async function* stuckCleanup() {
    try {
      yield 1;
      yield 2;
    } finally {
      entered.resolve();
      await new Promise(() => {}); // never settles
    }
  }
  for (const source of [stream, stuckCleanup()]) {
    const flow = pipeline(map(identity<number>)).run(source);
    const first = await flow[Symbol.asyncIterator]().next();
    assert.deepEqual(first, { done: false, value: 1 });
    await withTimeout(flow.abort(new Error("stop")), 2000, "abort()");
    assert.equal(flow.stats().done, true);
  }
  await withTimeout(cancelled.promise, 2000, "cancel() called");
  await withTimeout(entered.promise, 2000, "the generator's finally entered");
});

Deno.test("Flow.abort() after completion is a no-op and resolves", async () => {
  const flow = pipeline(map((x: number) => x * 2)).run([1, 2]);
  assert.deepEqual(await flow.collect(), [2, 4]);
  await flow.abort(new Error("late"));
  await flow.abort();
  const stats = flow.stats();
  assert.equal(stats.done, true);
  assert.equal(stats.itemsOut, 2);
});

Deno.test("Flow.abort() before the run started: no stage runs and the source is not read", async () => {
  const { source, probe } = syncSource();
  let calls = 0;
  const flow = pipeline(map((x: number) => calls++ + x)).run(source);
  const reason = new Error("early");
  const stopped = flow.abort(reason);
  assert.equal(await rejection(flow.collect()), reason);
  await stopped;
  await ticks();
  assert.equal(calls, 0);
  assert.equal(probe.pulled, 0);
});

Deno.test("Flow.abort() before the run started cancels a ReadableStream source", async () => {
  const { source, probe } = streamSource();
  const flow = pipeline(map(identity<number>)).run(source);
  const reason = new Error("early");
  await flow.abort(reason);
  assert.equal(await rejection(flow.collect()), reason);
  assert.equal(probe.pulled, 0);
  assert.equal(probe.closed, true, "the stream was cancelled");
  assert.equal(probe.cancelReason, reason);
});

Deno.test("run() signal already aborted: a ReadableStream source is cancelled", async () => {
  const { source, probe } = streamSource();
  const reason = new Error("too late");
  const flow = pipeline(map(identity<number>)).run(source, {
    signal: AbortSignal.abort(reason),
  });
  assert.equal(await rejection(flow.collect()), reason);
  assert.equal(probe.pulled, 0);
  assert.equal(probe.closed, true, "the stream was cancelled");
  assert.equal(probe.cancelReason, reason);
});

Deno.test("run() signal aborted between run() and the start: rejects with its reason and calls no stage", async () => {
  const controller = new AbortController();
  let calls = 0;
  const flow = pipeline(map((x: number) => calls++ + x)).run([1, 2], {
    signal: controller.signal,
  });
  const reason = new Error("changed my mind");
  controller.abort(reason);
  assert.equal(await rejection(flow.collect()), reason);
  assert.equal(calls, 0);
});

const endings: [
  string,
  (flow: {
    collect(): Promise<unknown[]>;
    abort(reason?: unknown): Promise<void>;
    [Symbol.asyncIterator](): AsyncIterator<unknown>;
  }) => Promise<unknown>,
][] = [
  ["completes", (flow) => flow.collect()],
  ["fails", (flow) => flow.collect().catch((e) => e)],
  ["is aborted", async (flow) => {
    const result = flow.collect().catch((e) => e);
    await ticks();
    await flow.abort();
    return result;
  }],
  ["is left by its consumer", async (flow) => {
    for await (const _ of flow) break;
  }],
];

for (const [how, end] of endings) {
  Deno.test(`run() signal: the abort listener is removed once the run ${how}`, async () => {
    const { controller, listeners } = trackedSignal();
    const flow = pipeline(map(async (x: number) => {
      await ticks(1);
      if (how === "fails" && x === 2) throw new Error("boom");
      return x;
    })).run(range(5), { signal: controller.signal });
    await ticks(1);
    assert(listeners.added >= 1, "a listener was added");
    await end(flow);
    assert.equal(flow.stats().done, true);
    assert.equal(listeners.active, 0);
    controller.abort(); // changes nothing now
    await ticks();
  });
}

Deno.test("Flow [Symbol.asyncIterator] an error thrown in the loop body cancels the run and propagates unchanged", async () => {
  const { source, probe } = syncSource();
  let aborted = 0;
  const p = pipeline(map(async (x: number, ctx) => {
    if (x === 0) return x;
    await whenAborted(ctx.signal);
    aborted++;
    return x;
  }, { concurrency: 2 }));
  const mine = new Error("consumer failed");
  const flow = p.run(source);
  const thrown = await rejection((async () => {
    for await (const _ of flow) {
      await ticks();
      throw mine;
    }
  })());
  assert.equal(thrown, mine);
  assert.equal(aborted, 2);
  assert.equal(probe.closed, true);
  assert.equal(flow.stats().done, true);
});

Deno.test("Flow [Symbol.asyncDispose] (await using) cancels the run and waits for in-flight calls", async () => {
  const events: string[] = [];
  const { source, probe } = syncSource();
  let started = 0;
  const p = pipeline(map(async (x: number, ctx) => {
    started++;
    await whenAborted(ctx.signal);
    await sleep(20);
    events.push("returned");
    return x;
  }, { concurrency: 2 }));
  {
    await using flow = p.run(source);
    await until(() => started === 2, "2 calls in flight");
    assert.equal(flow.stats().running, 2);
  }
  events.push("scope exited");
  assert.deepEqual(events, ["returned", "returned", "scope exited"]);
  assert.equal(probe.closed, true);
  assert.equal(started, 2);
});

Deno.test("Flow [Symbol.asyncDispose] after the run completed resolves and keeps the results", async () => {
  let results: number[] = [];
  {
    await using flow = pipeline(map((x: number) => x + 1)).run([1, 2]);
    results = await flow.collect();
  }
  assert.deepEqual(results, [2, 3]);
});

Deno.test("Flow.readable: reader.cancel() cancels the run and resolves after in-flight calls returned", async () => {
  const events: string[] = [];
  const { source, probe } = syncSource();
  let aborted = 0;
  const flow = pipeline(map(async (x: number, ctx) => {
    if (x === 0) return x;
    await whenAborted(ctx.signal);
    aborted++;
    await sleep(20);
    events.push("returned");
    return x;
  }, { concurrency: 3 })).run(source);
  const reader = flow.readable.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: 0 });
  await until(() => flow.stats().running === 3, "3 calls in flight");
  const pending = reader.read(); // waits for item 1
  await reader.cancel("not interested");
  events.push("cancel resolved");
  assert.deepEqual(await pending, { done: true, value: undefined });
  assert.equal(aborted, 3);
  assert.deepEqual(events, [
    "returned",
    "returned",
    "returned",
    "cancel resolved",
  ]);
  assert.equal(probe.closed, true);
  assert.equal(flow.stats().done, true);
});

Deno.test("Flow.readable: leaving a for await over the stream cancels the run", async () => {
  const { source, probe } = asyncSource();
  let aborted = 0;
  const flow = pipeline(map(async (x: number, ctx) => {
    if (x < 2) return x;
    await whenAborted(ctx.signal);
    aborted++;
    return x;
  }, { concurrency: 2 })).run(source);
  const seen: number[] = [];
  for await (const x of flow.readable) {
    seen.push(x);
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, [0, 1]);
  await withTimeout(
    until(() => flow.stats().done, "the run to settle"),
    5000,
    "settle",
  );
  assert.equal(aborted, 2);
  await withTimeout(
    until(() => probe.closed, "the generator's finally"),
    5000,
    "finally",
  );
});

// ---- reused tokens (Flow.stats() is tested in stats_test.ts) -------------------

Deno.test("Flow: items reusing the tokens of earlier results see their own index, id and attempts in every call", async () => {
  const N = 200;
  for (const order of ["input", "completion"] as const) {
    for (const consume of ["collect", "for await"]) {
      const seen: string[] = [];
      const check = (where: string, x: number, ctx: TaskContext) => {
        if (ctx.index !== x || ctx.itemId !== `id-${x}`) {
          seen.push(`${where}: item ${x}, index ${ctx.index}, ${ctx.itemId}`);
        }
      };
      const flow = pipeline(
        map(async (x: number, ctx) => {
          check("first", x, ctx);
          if (ctx.attempt !== 1) seen.push(`first: attempt ${ctx.attempt}`);
          if (x % 7 === 0) await sleep(1);
          return x;
        }, { concurrency: 3 }),
        map(async (x: number, ctx) => {
          check("second", x, ctx);
          await ticks(x % 5);
          // Every third item fails once: its token ends at attempt 2.
          if (x % 3 === 0 && ctx.attempt === 1) throw new Error("once");
          if (ctx.attempt !== (x % 3 === 0 ? 2 : 1)) {
            seen.push(`second: item ${x}, attempt ${ctx.attempt}`);
          }
          return 2 * x;
        }, { concurrency: 2, retry: { attempts: 2, delayMs: 0 } }),
      ).run(range(N), { order, id: (x) => `id-${x}`, bufferSize: 4 });
      let out: number[] = [];
      if (consume === "collect") out = await flow.collect();
      else {
        for await (const v of flow) {
          out.push(v);
          if (v % 11 === 0) await ticks(3); // a slow consumer
        }
      }
      assert.deepEqual(seen, [], `${order}, ${consume}`);
      const want = range(N).map((x) => 2 * x);
      if (order === "completion") out.sort((a, b) => a - b);
      assert.deepEqual(out, want, `${order}, ${consume}`);
    }
  }
});
