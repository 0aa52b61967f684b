// The shared behavioural cases of the core (pipelines, stages, flows), written
// once and run on every runtime through a thin adapter: Deno against mod.ts;
// Node (import and require), Bun, workerd and Chromium against the built npm
// package. Web-standard APIs only; small timers only; no wall-clock asserts.
import {
  aborted,
  type Case,
  check,
  equal,
  gate,
  rejects,
  sleep,
  throws,
  until,
  within,
} from "./_check.ts";

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * A map function whose calls finish in the order given by `finish` (a
 * permutation of the items), without timers: each call waits for the call
 * that must finish before it.
 */
function finishingIn(finish: number[]): (x: number) => Promise<number> {
  const done = new Map(finish.map((x) => [x, gate()]));
  return async (x) => {
    const at = finish.indexOf(x);
    if (at > 0) await done.get(finish[at - 1])!.promise;
    // Let the result travel before releasing the next one.
    await sleep(1);
    done.get(x)!.resolve();
    return x;
  };
}

/** An async generator that yields `items`, waiting for `pauses[i]` before item i. */
async function* paced<T>(
  items: T[],
  pauses: Map<number, () => Promise<void>>,
  probe: { closed: boolean } = { closed: false },
): AsyncGenerator<T> {
  try {
    for (let i = 0; i < items.length; i++) {
      await pauses.get(i)?.();
      yield items[i];
    }
  } finally {
    probe.closed = true;
  }
}

export const cases: Case[] = [
  // ---- ordering --------------------------------------------------------------
  {
    name:
      "run() order input: results come in input order whatever the finishing order",
    async run({ map, pipeline }) {
      const p = pipeline(map(finishingIn([3, 1, 4, 0, 2]), { concurrency: 5 }));
      equal(await p.run(range(5)).collect(), [0, 1, 2, 3, 4]);
    },
  },
  {
    name: "run() order completion: results come in finishing order",
    async run({ map, pipeline }) {
      const p = pipeline(map(finishingIn([3, 1, 4, 0, 2]), { concurrency: 5 }));
      equal(await p.run(range(5), { order: "completion" }).collect(), [
        3,
        1,
        4,
        0,
        2,
      ]);
    },
  },
  {
    name:
      "Flow.collect() through maps only: input order from an array and a generator, skipped items leave no gap",
    async run({ map, pipeline }) {
      const p = pipeline(
        map(async (x: number) => {
          await sleep(x % 3);
          if (x % 5 === 0) throw new Error(`skip ${x}`);
          return x;
        }, { concurrency: 4, onError: "skip" }),
      );
      const want = range(23).filter((x) => x % 5 !== 0);
      equal(await p.run(range(23)).collect(), want);
      equal(await p.run(range(23).values()).collect(), want);
    },
  },
  {
    name:
      "run() order input: the first result is yielded before a later item is done",
    async run({ map, pipeline }) {
      const last = gate();
      const flow = pipeline(map(async (x: number) => {
        if (x === 3) await last.promise;
        return x * 2;
      }, { concurrency: 4 })).run(range(4));
      const seen: number[] = [];
      for await (const y of flow) {
        seen.push(y);
        if (y === 0) last.resolve(); // item 3 can only finish now
      }
      equal(seen, [0, 2, 4, 6]);
    },
  },
  {
    name: "map() never runs more than concurrency calls at once",
    async run({ map, pipeline }) {
      let running = 0;
      let peak = 0;
      const out = await pipeline(map(async (x: number) => {
        peak = Math.max(peak, ++running);
        await sleep(1);
        running--;
        return x;
      }, { concurrency: 3 })).run(range(20)).collect();
      equal(out, range(20));
      equal(peak, 3, "peak concurrency");
    },
  },
  {
    name:
      "map() ctx: workerId within concurrency, index, itemId from id(), context",
    async run({ map, pipeline }) {
      const seen: [number, unknown, number, string, unknown][] = [];
      const out = await pipeline(map(async (x: string, ctx) => {
        seen.push([ctx.index, ctx.itemId, ctx.attempt, ctx.stage, ctx.context]);
        check(
          ctx.workerId >= 0 && ctx.workerId < 2,
          `workerId ${ctx.workerId}`,
        );
        check(ctx.signal instanceof AbortSignal, "ctx.signal");
        await sleep(1);
        return x.toUpperCase();
      }, { concurrency: 2, name: "up" })).run(["a", "b", "c"], {
        id: (item) => `id-${item}`,
        context: { user: 7 },
      }).collect();
      equal(out, ["A", "B", "C"]);
      seen.sort((a, b) => a[0] - b[0]);
      equal(seen, [
        [0, "id-a", 1, "up", { user: 7 }],
        [1, "id-b", 1, "up", { user: 7 }],
        [2, "id-c", 1, "up", { user: 7 }],
      ]);
    },
  },
  {
    name: "map() a multi-task stage runs its functions in sequence on one item",
    async run({ map, pipeline }) {
      const p = pipeline(map([
        (x: number) => Promise.resolve(x + 1),
        (x: number) => `#${x}`,
        (s: string) => Promise.resolve(s.repeat(2)),
      ], { concurrency: 2 }));
      equal(await p.run([1, 2, 3]).collect(), ["#2#2", "#3#3", "#4#4"]);
    },
  },
  {
    name: "pipeline() map → batch → map → flatten → map keeps input order",
    async run({ batch, flatten, map, pipeline }) {
      const p = pipeline(
        map(async (x: number) => (await sleep((7 - x) % 3), x * 2), {
          concurrency: 10,
        }),
        batch<number>({ maxSize: 3 }),
        map((xs: number[]) => Promise.resolve(xs.map((x) => x + 1)), {
          concurrency: 2,
        }),
        flatten<number>(),
        map((x: number) => x * 10),
      );
      equal(await p.run([1, 2, 3, 4, 5, 6, 7]).collect(), [
        30,
        50,
        70,
        90,
        110,
        130,
        150,
      ]);
    },
  },
  {
    name: "pipeline() is reusable: two runs at once are independent",
    async run({ map, pipeline }) {
      const p = pipeline(map(async (x: number, ctx) => {
        await sleep(1);
        return `${ctx.context}:${x}`;
      }, { concurrency: 2 }));
      const [a, b] = await Promise.all([
        p.run([1, 2], { context: "a" }).collect(),
        p.run([3], { context: "b" }).collect(),
      ]);
      equal(a, ["a:1", "a:2"]);
      equal(b, ["b:3"]);
    },
  },

  // ---- batching --------------------------------------------------------------
  {
    name:
      "batch() maxSize: full batches, then the remainder at the end of input",
    async run({ batch, pipeline }) {
      const p = pipeline(batch<number>({ maxSize: 3 }));
      equal(await p.run([1, 2, 3, 4, 5, 6, 7]).collect(), [
        [1, 2, 3],
        [4, 5, 6],
        [7],
      ]);
    },
  },
  {
    name: "batch() maxWaitMs flushes a partial batch while the source waits",
    async run({ batch, pipeline }) {
      const first = gate();
      // The source holds item 2 back until the consumer got the first batch,
      // so only the maxWaitMs timer can emit [0, 1].
      const flow = pipeline(batch<number>({ maxSize: 10, maxWaitMs: 15 }))
        .run(paced([0, 1, 2], new Map([[2, () => first.promise]])));
      const seen: number[][] = [];
      await within(
        (async () => {
          for await (const b of flow) {
            seen.push(b);
            first.resolve();
          }
        })(),
        5000,
        "the timed flush",
      );
      equal(seen, [[0, 1], [2]]);
    },
  },
  {
    name:
      "batch() minSize: a due batch waits for minSize items, then flushes at once",
    async run({ batch, pipeline }) {
      const p = pipeline(
        batch<number>({ maxSize: 10, maxWaitMs: 5, minSize: 3 }),
      );
      const wait = () => sleep(25);
      const out = await p.run(
        paced([1, 2, 3, 4], new Map([[2, wait], [3, wait]])),
      )
        .collect();
      equal(out, [[1, 2, 3], [4]]);
    },
  },
  {
    name: "batch() order completion forms batches in arrival order",
    async run({ batch, map, pipeline }) {
      const p = pipeline(
        map(finishingIn([2, 0, 3, 1]), { concurrency: 4 }),
        batch<number>({ maxSize: 2 }),
      );
      equal(await p.run(range(4), { order: "completion" }).collect(), [
        [2, 0],
        [3, 1],
      ]);
      equal(await p.run(range(4)).collect(), [[0, 1], [2, 3]]);
    },
  },
  {
    name:
      "batch() rejects bad options at the call site with RangeError and TypeError",
    run({ batch }) {
      const r = throws(() => batch({ maxSize: 0 }), "maxSize: 0");
      check(r instanceof RangeError, `RangeError, got ${r}`);
      check(String(r).includes("maxSize"), String(r));
      const t = throws(
        () => batch(undefined as unknown as { maxSize: number }),
        "no options",
      );
      check(t instanceof TypeError, `TypeError, got ${t}`);
      return Promise.resolve();
    },
  },

  // ---- flatten, filter -------------------------------------------------------
  {
    name:
      "flatten() emits the elements of each array item in order, skipping empty ones",
    async run({ flatten, pipeline }) {
      const p = pipeline(flatten<number>());
      equal(await p.run([[1, 2], [], [3], new Set([4, 5])]).collect(), [
        1,
        2,
        3,
        4,
        5,
      ]);
    },
  },
  {
    name:
      "filter() keeps items whose async predicate is truthy, in order, and counts the rest",
    async run({ filter, pipeline }) {
      const flow = pipeline(filter(async (x: number) => {
        await sleep(x % 3);
        return x % 2 === 0;
      }, { concurrency: 4 })).run(range(10));
      equal(await flow.collect(), [0, 2, 4, 6, 8]);
      equal(flow.stats().filtered, 5, "filtered");
    },
  },

  // ---- sources and consumers -------------------------------------------------
  {
    name: "run() reads a ReadableStream source lazily and in order",
    async run({ map, pipeline }) {
      let pulled = 0;
      const source = new ReadableStream<number>({
        pull(controller) {
          if (pulled === 5) controller.close();
          else controller.enqueue(pulled++);
        },
      }, { highWaterMark: 0 });
      const out = await pipeline(map((x: number) => Promise.resolve(x * 3), {
        concurrency: 2,
      })).run(source).collect();
      equal(out, [0, 3, 6, 9, 12]);
    },
  },
  {
    name:
      "run() reads an endless generator lazily: break stops it and runs its finally",
    async run({ map, pipeline }) {
      const probe = { pulled: 0, closed: false };
      function* endless() {
        try {
          for (;;) yield probe.pulled++;
        } finally {
          probe.closed = true;
        }
      }
      const flow = pipeline(map((x: number) => x + 1, { concurrency: 2 }))
        .run(endless(), { bufferSize: 4 });
      const seen: number[] = [];
      for await (const x of flow) {
        seen.push(x);
        if (seen.length === 10) break;
      }
      equal(seen, range(10).map((x) => x + 1));
      check(probe.closed, "the generator's finally ran");
      check(probe.pulled <= 10 + 4 + 2, `pulled ${probe.pulled}`);
      equal(flow.stats().done, true, "done");
    },
  },
  {
    name: "Flow.readable streams the results through getReader()",
    async run({ map, pipeline }) {
      const reader = pipeline(map((x: number) => Promise.resolve(`<${x}>`)))
        .run([1, 2, 3])
        .readable.getReader();
      const out: string[] = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        out.push(value);
      }
      equal(out, ["<1>", "<2>", "<3>"]);
    },
  },
  {
    name:
      "Pipeline.transform() works with ReadableStream.prototype.pipeThrough",
    async run({ map, pipeline }) {
      let i = 0;
      const input = new ReadableStream<number>({
        pull(c) {
          if (i === 4) c.close();
          else c.enqueue(++i);
        },
      });
      const reader = input.pipeThrough(
        pipeline(map((x: number) => Promise.resolve(x * x), { concurrency: 2 }))
          .transform(),
      ).getReader();
      const out: number[] = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        out.push(r.value);
      }
      equal(out, [1, 4, 9, 16]);
    },
  },
  {
    name: "Flow allows one consumer: a second one throws a TypeError",
    async run({ map, pipeline }) {
      const flow = pipeline(map((x: number) => x)).run([1]);
      const all = flow.collect();
      const e = throws(() => flow.collect(), "second consumer");
      check(e instanceof TypeError, `TypeError, got ${e}`);
      equal(await all, [1]);
    },
  },

  // ---- cancellation ----------------------------------------------------------
  {
    name:
      "run() signal: aborting rejects with its reason and aborts every in-flight ctx.signal",
    async run({ map, pipeline }) {
      const controller = new AbortController();
      const signals: AbortSignal[] = [];
      let returned = 0;
      const flow = pipeline(map(async (_: number, ctx) => {
        signals.push(ctx.signal);
        await aborted(ctx.signal);
        returned++;
      }, { concurrency: 3 })).run(range(10), { signal: controller.signal });
      const settled = flow.collect();
      await until(() => signals.length === 3, "3 calls in flight");
      const reason = new Error("stop");
      controller.abort(reason);
      equal(await rejects(settled, "aborted flow"), reason);
      equal(
        returned,
        3,
        "every in-flight call returned before the flow settled",
      );
      check(signals.every((s) => s.aborted && s.reason === reason), "reasons");
    },
  },
  {
    name:
      "Flow.abort() without a reason rejects with a DOMException named AbortError",
    async run({ map, pipeline }) {
      const started = gate();
      const flow = pipeline(map(async (_: number, ctx) => {
        started.resolve();
        await aborted(ctx.signal);
      })).run(range(3));
      const settled = flow.collect();
      await started.promise;
      await flow.abort();
      const e = await rejects(settled, "aborted flow");
      check(e instanceof DOMException, `DOMException, got ${e}`);
      equal((e as DOMException).name, "AbortError");
    },
  },
  {
    name:
      "run() with an already aborted signal calls no stage and rejects with its reason",
    async run({ map, pipeline }) {
      let calls = 0;
      const reason = new Error("early");
      const flow = pipeline(map((x: number) => (calls++, x))).run([1, 2], {
        signal: AbortSignal.abort(reason),
      });
      equal(await rejects(flow.collect(), "pre-aborted"), reason);
      equal(calls, 0, "calls");
    },
  },
  {
    name:
      "Flow leaving a for await loop aborts in-flight calls and closes the source quietly",
    async run({ map, pipeline }) {
      const probe = { closed: false };
      let cancelled = 0;
      let started = 0;
      const othersStarted = gate();
      const flow = pipeline(map(async (x: number, ctx) => {
        if (x === 0) {
          await othersStarted.promise;
          return x;
        }
        if (++started === 2) othersStarted.resolve();
        await aborted(ctx.signal);
        cancelled++;
        return x;
      }, { concurrency: 3 })).run(paced(range(100), new Map(), probe));
      for await (const x of flow) {
        equal(x, 0);
        break;
      }
      check(probe.closed, "the source's finally ran");
      equal(cancelled, 2, "in-flight calls aborted and returned");
      equal(flow.stats().done, true);
    },
  },
  {
    name: "Flow.abort() cancels a ReadableStream source with the reason",
    async run({ map, pipeline }) {
      let cancelledWith: unknown;
      const source = new ReadableStream<number>({
        pull(c) {
          c.enqueue(1);
        },
        cancel(reason) {
          cancelledWith = reason;
        },
      });
      const started = gate();
      const flow = pipeline(map(async (_: number, ctx) => {
        started.resolve();
        await aborted(ctx.signal);
      })).run(source);
      const settled = flow.collect();
      await started.promise;
      const reason = new Error("enough");
      await flow.abort(reason);
      equal(await rejects(settled, "aborted"), reason);
      equal(cancelledWith, reason, "cancel() reason");
    },
  },

  // ---- errors, retries, timeouts, rate limits ---------------------------------
  {
    name:
      "PipelineError: a middle-stage failure rejects the run with stage, item, itemId and cause",
    async run({ batch, map, pipeline, PipelineError }) {
      const boom = new Error("boom");
      const flow = pipeline(
        map((x: number) => x * 10, { name: "a" }),
        map(async (x: number) => {
          await sleep(x % 2);
          if (x === 30) throw boom;
          return x;
        }, { name: "b", concurrency: 2 }),
        batch<number>({ maxSize: 2 }),
      ).run([1, 2, 3, 4], { id: (x) => `#${x}` });
      const e = await rejects(flow.collect(), "stage b fails");
      check(e instanceof PipelineError, `PipelineError, got ${e}`);
      check(e instanceof Error, "an Error");
      equal(e.name, "PipelineError");
      equal(e.stage, "b");
      equal(e.item, 30);
      equal(e.itemId, "#3");
      equal(e.cause, boom);
    },
  },
  {
    name:
      "run() a failure aborts the other in-flight calls before the run rejects",
    async run({ map, pipeline, PipelineError }) {
      let returned = 0;
      const flow = pipeline(map(async (x: number, ctx) => {
        if (x === 2) {
          await sleep(2);
          throw new Error("x");
        }
        await aborted(ctx.signal);
        returned++;
      }, { concurrency: 3 })).run(range(3));
      const e = await rejects(flow.collect(), "failure");
      check(e instanceof PipelineError, `PipelineError, got ${e}`);
      equal(returned, 2, "the others were aborted and returned");
    },
  },
  {
    name: "run() a throwing source rejects the flow with that very error",
    async run({ map, pipeline }) {
      const broken = new Error("source broke");
      function* source() {
        yield 1;
        throw broken;
      }
      const e = await rejects(
        pipeline(map((x: number) => x)).run(source()).collect(),
        "source error",
      );
      equal(e, broken);
    },
  },
  {
    name:
      'map() onError: "skip" leaves the item out and records it in flow.failures',
    async run({ map, pipeline }) {
      const flow = pipeline(map(async (x: number) => {
        await sleep(x % 2);
        if (x % 3 === 0) throw new Error(`bad ${x}`);
        return x;
      }, { onError: "skip", concurrency: 2, name: "check" })).run(range(7));
      equal(await flow.collect(), [1, 2, 4, 5]);
      equal(
        flow.failures.map((f) => [f.index, f.stage, f.item, String(f.error)]),
        [
          [0, "check", 0, "Error: bad 0"],
          [3, "check", 3, "Error: bad 3"],
          [6, "check", 6, "Error: bad 6"],
        ],
      );
      const s = flow.stats();
      equal([s.itemsIn, s.itemsOut, s.skipped, s.failed], [7, 4, 3, 3]);
    },
  },
  {
    name:
      "map() onError handler: { value } substitutes a result, an async handler may skip",
    async run({ map, pipeline }) {
      const flow = pipeline(map((x: number) => {
        if (x < 0) throw new RangeError("negative");
        return x;
      }, {
        onError: async (error, item) => {
          await sleep(1);
          return item === -1
            ? { value: `fallback:${(error as Error).name}` }
            : "skip";
        },
      })).run([1, -1, 2, -2]);
      equal(await flow.collect(), [1, "fallback:RangeError", 2]);
      equal(flow.failures.length, 1);
    },
  },
  {
    name:
      "map() retry: a failing call is retried with attempt numbers until it succeeds",
    async run({ map, pipeline }) {
      const attempts: number[] = [];
      const flow = pipeline(map((x: number, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error("flaky");
        return x;
      }, { retry: { attempts: 3, delayMs: 1 } })).run([42]);
      const retrying: number[] = [];
      flow.addEventListener("retrying", (e) => retrying.push(e.detail.attempt));
      equal(await flow.collect(), [42]);
      equal(attempts, [1, 2, 3]);
      equal(retrying, [1, 2], "retrying events carry the failed attempt");
      equal(flow.stats().stages[0].retried, 2, "retried");
    },
  },
  {
    name: "map() retry: retryIf false fails at once with the error as cause",
    async run({ map, pipeline, PipelineError }) {
      let calls = 0;
      const fatal = new Error("404");
      const flow = pipeline(map(() => {
        calls++;
        throw fatal;
      }, {
        retry: {
          attempts: 5,
          delayMs: 1,
          retryIf: (e) => !String(e).includes("404"),
        },
      })).run([1]);
      const e = await rejects(flow.collect(), "fatal");
      check(e instanceof PipelineError, `PipelineError, got ${e}`);
      equal(e.cause, fatal);
      equal(calls, 1);
    },
  },
  {
    name:
      "map() timeoutMs: the attempt's ctx.signal aborts and the call fails with a TimeoutError",
    async run({ map, pipeline, PipelineError, TimeoutError }) {
      let reason: unknown;
      const flow = pipeline(map(async (_: number, ctx) => {
        await aborted(ctx.signal);
        reason = ctx.signal.reason;
      }, { timeoutMs: 10 })).run([1]);
      const e = await rejects(flow.collect(), "timeout");
      check(e instanceof PipelineError, `PipelineError, got ${e}`);
      check(
        e.cause instanceof TimeoutError,
        `TimeoutError cause, got ${e.cause}`,
      );
      equal(e.cause.name, "TimeoutError");
      equal(reason, e.cause, "ctx.signal.reason is the TimeoutError");
    },
  },
  {
    name: "map() rateLimit: at most limit calls start within the interval",
    async run({ map, pipeline }) {
      let started = 0;
      const flow = pipeline(map(async (x: number, ctx) => {
        started++;
        await aborted(ctx.signal);
        return x;
      }, { concurrency: 5, rateLimit: { limit: 2, intervalMs: 2000 } }))
        .run(range(5));
      const settled = flow.collect();
      await until(() => started === 2, "2 starts");
      await sleep(30);
      equal(started, 2, "starts within the interval");
      await flow.abort();
      await rejects(settled, "aborted");
    },
  },
  {
    name:
      "map() rejects concurrency: 0 with a RangeError naming the option and value",
    run({ map }) {
      const e = throws(() => map((x: number) => x, { concurrency: 0 }), "0");
      check(e instanceof RangeError, `RangeError, got ${e}`);
      check(
        /'concurrency'.*current value is 0/.test((e as Error).message),
        (e as Error).message,
      );
      const t = throws(
        () => map((x: number) => x, { concurrency: "4" as unknown as number }),
        "string",
      );
      check(t instanceof TypeError, `TypeError, got ${t}`);
      return Promise.resolve();
    },
  },

  // ---- monitoring ------------------------------------------------------------
  {
    name:
      "Flow events: one started and one completed CustomEvent per item and stage",
    async run({ map, pipeline }) {
      const flow = pipeline(
        map((x: number) => Promise.resolve(x + 1), {
          name: "a",
          concurrency: 2,
        }),
        map((x: number) => x * 2, { name: "b" }),
      ).run(range(5));
      const seen: string[] = [];
      let custom = true;
      for (const type of ["started", "completed"] as const) {
        flow.addEventListener(type, (e) => {
          custom &&= e instanceof CustomEvent;
          seen.push(`${type}:${e.detail.stage}:${e.detail.index}`);
        });
      }
      equal(await flow.collect(), [2, 4, 6, 8, 10]);
      check(custom, "CustomEvent");
      equal(seen.length, 20);
      for (const stage of ["a", "b"]) {
        for (const i of range(5)) {
          check(
            seen.includes(`started:${stage}:${i}`),
            `started ${stage} ${i}`,
          );
          check(
            seen.indexOf(`started:${stage}:${i}`) <
              seen.indexOf(`completed:${stage}:${i}`),
            `started before completed ${stage} ${i}`,
          );
        }
      }
    },
  },
  {
    name: "Flow events: a final progress event carries done stats",
    async run({ map, pipeline }) {
      const flow = pipeline(map((x: number) => Promise.resolve(x))).run(
        range(3),
        {
          progressIntervalMs: 1000,
        },
      );
      const done: boolean[] = [];
      flow.addEventListener("progress", (e) => done.push(e.detail.done));
      await flow.collect();
      equal(done.at(-1), true, "last progress event");
      equal(flow.stats().itemsOut, 3);
    },
  },
  {
    name:
      "Flow.stats() balances: itemsIn = out + skipped + filtered + cancelled + inFlight",
    async run({ filter, map, pipeline }) {
      const flow = pipeline(
        map(async (x: number) => {
          await sleep(x % 2);
          if (x === 4) throw new Error("x");
          return x;
        }, { onError: "skip", concurrency: 3 }),
        filter((x: number) => x % 2 === 1),
      ).run(range(10));
      const snapshots = [flow.stats()];
      for await (const _ of flow) snapshots.push(flow.stats());
      const s = flow.stats();
      snapshots.push(s);
      for (const t of snapshots) {
        equal(
          t.itemsIn,
          t.itemsOut + t.skipped + t.filtered + t.cancelled + t.inFlight,
          "balance",
        );
      }
      equal([s.itemsIn, s.itemsOut, s.skipped, s.filtered, s.inFlight], [
        10,
        5,
        1,
        4,
        0,
      ]);
      equal(s.stages.map((st) => st.name), ["map#1", "filter#2"]);
      equal(s.stages[0].completed, 9);
    },
  },
  {
    name: "formatProgress() renders stats as one line of text",
    run({ formatProgress }) {
      const none = { count: 0, avg: 0, p50: 0, p95: 0, max: 0 };
      const stats = {
        elapsedMs: 4900,
        itemsIn: 130,
        itemsOut: 115,
        failed: 2,
        skipped: 2,
        filtered: 3,
        cancelled: 0,
        inFlight: 10,
        results: 115,
        running: 4,
        done: false,
        latency: none,
        stages: [],
      };
      equal(
        formatProgress(stats, { total: 300, label: "fetch" }),
        "fetch 120/300 ▕████░░░░░░▏ 40% · 24.5/s · 2 failed · eta 7s",
      );
      equal(formatProgress(stats), "flow 120 done · 24.5/s · 2 failed · 4.9s");
      return Promise.resolve();
    },
  },
];
