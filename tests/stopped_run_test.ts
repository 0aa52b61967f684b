// A stopped run (a failure, flow.abort(), the run's signal) delivers nothing
// more, to any consumer: results done but not taken are cancelled, never both
// delivered and cancelled; every source item is counted exactly once, also
// one returned by a read still pending at the stop; collect() rejects and
// what it had gathered is cancelled. Non-native thenables from a source are
// read as promises.
import assert from "node:assert/strict";
import { batch, type FlowStats, map, pipeline, toSSE } from "../mod.ts";
import { deferred, rejection, sleep, ticks } from "./_helpers.ts";

const identity = <T>(x: T): T => x;

function assertBalanced(s: FlowStats): void {
  assert.equal(
    s.itemsIn,
    s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight,
    JSON.stringify(s),
  );
}

/** Three items, then (5 ms later) a failure of the source. */
async function* failingAfterThree() {
  yield 0;
  yield 1;
  yield 2;
  await sleep(5);
  throw new Error("boom");
}

Deno.test("a run stopped by its source's failure yields no result it had finished: the consumer gets the error, stats count them cancelled once", async () => {
  for (const order of ["completion", "input"] as const) {
    const flow = pipeline(map(identity<number>)).run(failingAfterThree(), {
      order,
    });
    await sleep(20); // 0, 1, 2 are done; the source has failed since
    const got: number[] = [];
    const error = await rejection((async () => {
      for await (const x of flow) got.push(x);
    })());
    assert.equal((error as Error).message, "boom");
    assert.deepEqual(got, [], order);
    const s = flow.stats();
    assert.equal(s.itemsIn, 3);
    assert.equal(s.itemsOut, 0);
    assert.equal(s.results, 0);
    assert.equal(s.cancelled, 3);
    assertBalanced(s);
  }
});

Deno.test("after await flow.abort(reason), for await, readable and collect() deliver nothing and reject with the reason", async () => {
  const consumers = {
    "for await": async (flow: AsyncIterable<number>) => {
      const got: number[] = [];
      for await (const x of flow) got.push(x);
      return got;
    },
    readable: async (flow: { readable: ReadableStream<number> }) => {
      const got: number[] = [];
      const reader = flow.readable.getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        got.push(r.value);
      }
      return got;
    },
    "collect()": (flow: { collect(): Promise<number[]> }) => flow.collect(),
  };
  for (const [name, consume] of Object.entries(consumers)) {
    const flow = pipeline(map(identity<number>)).run([0, 1, 2], {
      order: "completion",
    });
    await ticks(); // every item is done and waits to be taken
    const reason = new Error("stop");
    await flow.abort(reason);
    const error = await rejection(consume(flow as never));
    assert.equal(error, reason, name);
    const s = flow.stats();
    assert.deepEqual([s.itemsIn, s.itemsOut, s.cancelled], [3, 0, 3], name);
    assertBalanced(s);
  }
});

Deno.test("toSSE() of an aborted flow writes no data event for results finished before the stop, only the error event", async () => {
  const flow = pipeline(map(identity<number>)).run([0, 1, 2]);
  await ticks();
  await flow.abort(new Error("stop"));
  const text = await new Response(toSSE(flow)).text();
  assert.doesNotMatch(text, /^data: [012]$/m);
  assert.match(text, /^event: error$/m);
  assert.equal(flow.stats().itemsOut, 0);
});

Deno.test("a stopped run counts an item returned by a read that was still pending at the stop", async () => {
  const gate = deferred();
  let produced = 0;
  async function* source() {
    produced++;
    yield 0;
    await gate.promise;
    produced++;
    yield 1;
  }
  const flow = pipeline(map(identity<number>)).run(source());
  const it = flow[Symbol.asyncIterator]();
  assert.deepEqual(await it.next(), { done: false, value: 0 });
  await ticks(); // the read of item 1 is pending
  await flow.abort(new Error("stop"));
  gate.resolve();
  await ticks();
  const s = flow.stats();
  assert.equal(produced, 2);
  assert.equal(s.itemsIn, 2);
  assert.equal(s.itemsOut, 1);
  assert.equal(s.cancelled, 1);
  assertBalanced(s);
});

Deno.test("collect() through map stages only, aborted: the results it had placed count cancelled, not out", async () => {
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    if (x === 3) await gate.promise;
    return x;
  })).run(
    [0, 1, 2, 3],
    { order: "completion" },
  );
  const failure = rejection(flow.collect());
  await ticks(); // 0, 1, 2 placed; 3 waits
  const aborted = flow.abort(new Error("stop"));
  gate.resolve(); // the call ignores its signal: abort() waits for it
  await aborted;
  assert.equal(((await failure) as Error).message, "stop");
  const s = flow.stats();
  assert.deepEqual([s.itemsIn, s.itemsOut, s.results, s.cancelled], [
    4,
    0,
    0,
    4,
  ]);
  assertBalanced(s);
});

Deno.test("collect() of a flow disposed while collecting rejects: its results would be incomplete", async () => {
  const gate = deferred();
  const flow = pipeline(map(async (x: number) => {
    if (x === 1) await gate.promise;
    return x;
  })).run([
    0,
    1,
    2,
  ]);
  const failure = rejection(flow.collect());
  await ticks();
  const disposed = flow[Symbol.asyncDispose]();
  gate.resolve();
  await disposed;
  assert.equal(((await failure) as Error).name, "AbortError");
  assertBalanced(flow.stats());
});

/** An async iterable whose next() answers with a plain-object thenable. */
function thenableSource(items: number[]): AsyncIterable<number> {
  return {
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        next() {
          const r = i < items.length
            ? { done: false as const, value: items[i++] }
            : { done: true as const, value: undefined };
          return {
            then(resolve: (r: IteratorResult<number>) => void) {
              queueMicrotask(() => resolve(r));
            },
          } as unknown as Promise<IteratorResult<number>>;
        },
      };
    },
  };
}

Deno.test("a source whose next() returns a non-native thenable is read item by item (for await and collect())", async () => {
  const p = pipeline(map((x: number) => x * 10));
  assert.deepEqual(await p.run(thenableSource([1, 2, 3])).collect(), [
    10,
    20,
    30,
  ]);
  const got: number[] = [];
  for await (const x of p.run(thenableSource([4, 5]))) got.push(x);
  assert.deepEqual(got, [40, 50]);
});

Deno.test("an item read by a synchronous read during which the run stopped is counted in and cancelled", async () => {
  // Read by the pump (no stage), and by a first-stage worker reading for itself.
  const shapes = [
    () => pipeline<number>(),
    () => pipeline(map(identity<number>)),
  ];
  for (const [n, make] of shapes.entries()) {
    const controller = new AbortController();
    const source = function* () {
      yield 0;
      controller.abort();
      yield 1;
    };
    const flow = make().run(source(), { signal: controller.signal });
    await rejection(flow.collect());
    const s = flow.stats();
    assert.equal(s.itemsIn, 2, `${n} stages`);
    assert.equal(s.inFlight, 0);
    assert.equal(s.cancelled, 2);
    assertBalanced(s);
  }
});

Deno.test("an id() that throws counts its item in and cancelled", async () => {
  const flow = pipeline(map(identity<number>)).run([0, 1, 2], {
    id: (x) => {
      if (x === 1) throw new Error("no id");
      return x;
    },
  });
  await rejection(flow.collect());
  const s = flow.stats();
  assert.equal(s.inFlight, 0);
  assert.equal(s.itemsIn, s.cancelled + s.itemsOut);
  assertBalanced(s);
});

Deno.test("a run stopped by a 'failed' or 'skipped' listener counts the item once: skipped if it was, else cancelled", async () => {
  for (const type of ["failed", "skipped"] as const) {
    const flow = pipeline(map((x: number) => {
      if (x === 0) throw new Error("bad");
      return x;
    }, { onError: "skip" })).run([0, 1]);
    flow.addEventListener(type, () => flow.abort());
    await rejection(flow.collect());
    const s = flow.stats();
    assertBalanced(s);
    assert.equal(s.inFlight, 0);
    assert.equal(s.skipped + s.cancelled, s.itemsIn - s.itemsOut, type);
    // A failures record is a skipped item, and only then.
    assert.equal(flow.failures.length, s.skipped, type);
    assert.equal(s.skipped, type === "skipped" ? 1 : 0, type);
  }
});

Deno.test("no 'started' event fires once the run has stopped", async () => {
  function* source() {
    yield 1;
    yield 2;
    throw new Error("source failed");
  }
  let calls = 0;
  const flow = pipeline(
    batch<number>({ maxSize: 1 }),
    map((xs: number[]) => {
      calls++;
      return xs;
    }),
  ).run(source(), { bufferSize: 0 });
  const started: number[] = [];
  flow.addEventListener("started", (e) => started.push(e.detail.index));
  await rejection((async () => {
    for await (const _ of flow);
  })());
  assert.equal(started.length, calls);
});
