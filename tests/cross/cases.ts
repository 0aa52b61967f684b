// The shared behavioural cases of the core (pipelines, stages, flows), written
// once and run on every runtime through a thin adapter: Deno against mod.ts;
// Node (import and require), Bun, workerd and Chromium against the built npm
// package. Web-standard APIs only; small timers only; no wall-clock asserts.
//
// Each behaviour is pinned once (issue 17): a case lives here when it rests on
// a web primitive whose behaviour differs between runtimes (ReadableStream,
// AbortSignal, CustomEvent, timers, text encoding); pure logic (ordering,
// concurrency counts, validation, stats arithmetic, onError) is pinned by the
// Deno unit tests (tests/*_test.ts) only. Every public entry is still
// exercised here at least once.
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
  // ---- batching (timers) -------------------------------------------------------
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
      "Pipeline.transform() works with ReadableStream.prototype.pipeThrough, in input order through map, batch, flatten and filter",
    async run({ batch, filter, flatten, map, pipeline }) {
      let i = 0;
      const input = new ReadableStream<number>({
        pull(c) {
          if (i === 20) c.close();
          else c.enqueue(i++);
        },
      });
      const p = pipeline(
        map(async (x: number) => {
          await sleep((x * 7) % 5);
          return x * 2;
        }, { concurrency: 4 }),
        batch<number>({ maxSize: 3 }),
        flatten<number>(),
        filter((x: number) => x % 4 === 0),
      );
      const reader = input.pipeThrough(p.transform()).getReader();
      const out: number[] = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        out.push(r.value);
      }
      equal(out, range(20).map((x) => x * 2).filter((x) => x % 4 === 0));
    },
  },

  // ---- cancellation (AbortSignal) ---------------------------------------------
  {
    name:
      "run() signal: aborting rejects with its reason and aborts every in-flight ctx.signal",
    async run({ map, pipeline }) {
      const controller = new AbortController();
      const signals: AbortSignal[] = [];
      const probe = { closed: false };
      let returned = 0;
      const flow = pipeline(map(async (_: number, ctx) => {
        signals.push(ctx.signal);
        await aborted(ctx.signal);
        returned++;
      }, { concurrency: 3 })).run(paced(range(10), new Map(), probe), {
        signal: controller.signal,
        bufferSize: 0,
      });
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
      equal(signals.length, 3, "no call started after the abort");
      check(signals.every((s) => s.aborted && s.reason === reason), "reasons");
      check(probe.closed, "the source's finally ran");
      equal(flow.stats().done, true, "done");
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
      "run() with an already aborted signal reads nothing, calls no stage and rejects with its reason",
    async run({ map, pipeline }) {
      let calls = 0;
      let pulled = 0;
      function* source() {
        for (;;) yield pulled++;
      }
      const reason = new Error("early");
      const flow = pipeline(map((x: number) => (calls++, x))).run(source(), {
        signal: AbortSignal.abort(reason),
      });
      equal(await rejects(flow.collect(), "pre-aborted"), reason);
      equal(calls, 0, "calls");
      equal(pulled, 0, "the source was not read");
      equal(flow.stats().done, true, "done");
    },
  },
  {
    name:
      "Flow leaving a for await loop aborts in-flight calls, returns only after they returned, and closes the source quietly",
    async run({ map, pipeline }) {
      const probe = { closed: false };
      const events: string[] = [];
      let started = 0;
      const flow = pipeline(map(async (x: number, ctx) => {
        if (x === 0) return x;
        started++;
        await aborted(ctx.signal);
        events.push("saw abort");
        await sleep(20); // returns well after the abort
        events.push("returned");
        return x;
      }, { concurrency: 3 })).run(paced(range(100), new Map(), probe), {
        bufferSize: 2,
      });
      for await (const x of flow) {
        equal(x, 0);
        await until(() => started === 3, "3 slow calls in flight");
        break;
      }
      events.push("loop exited");
      equal(started, 3, "no call started after the break");
      equal(events, [
        "saw abort",
        "saw abort",
        "saw abort",
        "returned",
        "returned",
        "returned",
        "loop exited",
      ]);
      check(probe.closed, "the source's finally ran");
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
      "run() a failure aborts the other in-flight calls, rejects only after they returned and closes the source",
    async run({ map, pipeline, PipelineError }) {
      const events: string[] = [];
      const signals: AbortSignal[] = [];
      const probe = { closed: false };
      const flow = pipeline(map(async (x: number, ctx) => {
        if (x === 2) {
          await until(() => signals.length === 2, "2 other calls in flight");
          throw new Error("x");
        }
        signals.push(ctx.signal);
        await aborted(ctx.signal);
        events.push("saw abort");
        await sleep(20);
        events.push("returned");
        return x;
      }, { concurrency: 3 })).run(paced(range(100), new Map(), probe));
      const e = await rejects(
        flow.collect().finally(() => events.push("rejected")),
        "failure",
      );
      check(e instanceof PipelineError, `PipelineError, got ${e}`);
      equal(e.item, 2);
      equal(events, [
        "saw abort",
        "saw abort",
        "returned",
        "returned",
        "rejected",
      ]);
      check(
        signals.every((s) => s.aborted && s.reason === e),
        "ctx.signal aborts with the PipelineError",
      );
      check(probe.closed, "the source's finally ran");
      equal(flow.stats().inFlight, 0, "inFlight");
    },
  },

  {
    // Real timers only: deadlines, retries after a timeout and cleared timers
    // are pinned on a fake clock in tests/timeout_test.ts.
    name:
      "map() timeoutMs on a real timer: the deadline fires, aborts the attempt's ctx.signal and the call fails with a TimeoutError",
    async run({ map, pipeline, TimeoutError }) {
      let early = true;
      let reason: unknown;
      const flow = pipeline(map(async (_: number, ctx) => {
        await Promise.resolve();
        early = ctx.signal.aborted;
        await aborted(ctx.signal);
        reason = ctx.signal.reason;
      }, { timeoutMs: 10 })).run([1]);
      const e = await rejects(flow.collect(), "timeout");
      equal(early, false, "the deadline has not fired at once");
      check(reason instanceof TimeoutError, `TimeoutError, got ${reason}`);
      equal((reason as Error).name, "TimeoutError");
      equal((e as { cause?: unknown }).cause, reason, "the failure's cause");
    },
  },
  {
    // Real timers only: the sliding window is pinned on a fake clock in
    // tests/stage_rate_limit_test.ts.
    name:
      "map() rateLimit on a real timer: calls over the limit wait for the interval, then the limiter's timer releases them",
    async run({ map, pipeline }) {
      let started = 0;
      const flow = pipeline(map((x: number) => {
        started++;
        return x;
      }, { concurrency: 5, rateLimit: { limit: 2, intervalMs: 150 } }))
        .run(range(5));
      const settled = flow.collect();
      await until(() => started === 2, "2 starts");
      await sleep(10);
      equal(started, 2, "no third start within the interval");
      equal(await settled, range(5), "every call started in the end");
    },
  },
  // ---- monitoring (CustomEvent, timers, text) --------------------------------
  {
    name:
      "Flow events: one started and one completed CustomEvent per item and stage, and none else, stage by stage",
    async run({ map, pipeline }) {
      const flow = pipeline(
        map(async (x: number) => {
          await sleep(x % 2);
          return x;
        }, { concurrency: 4 }),
        map((x: number) => x * 10, { concurrency: 2 }),
      ).run(range(10));
      const seen: string[] = [];
      let custom = true;
      const types = [
        "started",
        "completed",
        "retrying",
        "failed",
        "skipped",
      ] as const;
      for (const type of types) {
        flow.addEventListener(type, (e) => {
          custom &&= e instanceof CustomEvent && e.type === type;
          seen.push(`${type}:${e.detail.stage}:${e.detail.index}`);
        });
      }
      equal(await flow.collect(), range(10).map((x) => x * 10));
      check(custom, "CustomEvent");
      equal(seen.length, 40, "20 started, 20 completed, nothing else");
      for (const stage of ["map#1", "map#2"]) {
        for (const type of ["started", "completed"]) {
          const indices = seen
            .filter((e) => e.startsWith(`${type}:${stage}:`))
            .map((e) => Number(e.split(":")[2]))
            .sort((a, b) => a - b);
          equal(indices, range(10), `${stage} ${type}`);
        }
      }
      for (const i of range(10)) {
        const at = (e: string) => seen.indexOf(e);
        check(
          at(`started:map#1:${i}`) < at(`completed:map#1:${i}`) &&
            at(`completed:map#1:${i}`) < at(`started:map#2:${i}`) &&
            at(`started:map#2:${i}`) < at(`completed:map#2:${i}`),
          `item ${i}: started before completed, stage 1 before stage 2`,
        );
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
    name: "formatProgress() renders stats as one line of text",
    run({ formatProgress }) {
      const none = { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 };
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
  {
    name:
      "map() refuses a misspelt option with a TypeError naming the closest known one",
    run({ map }) {
      const e = throws(
        () => map((x: number) => x, { concurency: 4 } as never),
        "a misspelt option",
      );
      check(e instanceof TypeError, "a TypeError");
      equal(
        (e as TypeError).message,
        "'concurency' is not an option of map(): did you mean 'concurrency'?",
      );
      return Promise.resolve();
    },
  },
];
