// W1, per-item overhead: `--n` items (100,000 or 1,000,000) of
// `async (x) => x * 2`, concurrency 16, in input order and in completion
// order; the output consumed as a stream (`for await`, or the library's
// callback) where the library can stream, else as the array it returns.
// Floors: the sequential loop `for (const x of items) sink.add(await fn(x))`,
// the same loop collecting into an array first (what `collect()` and the
// materialising peers produce), and a bare async generator consumed with
// `for await`.
import {
  args,
  awaitLoopCase,
  expected,
  loadSluice,
  main,
  numArg,
  range,
  Sink,
  timeIterations,
  verify,
} from "../common.mjs";
import { orderedWindow, windowStream } from "../hand.mjs";

const N = numArg("n", 100_000);
const C = 16;
// deno-lint-ignore require-await
const fn = async (x) => x * 2;

const items = range(N);
const want = expected(items.map((x) => x * 2));
const at = (k) => 2 * k;

/** Streams `iterable` into a fresh sink. */
async function drain(iterable, ordered) {
  const sink = new Sink(ordered ? at : null);
  for await (const v of iterable) sink.add(v);
  return sink;
}

/** A materialised result into a fresh sink. */
function fold(values, ordered) {
  const sink = new Sink(ordered ? at : null);
  sink.addAll(values);
  return sink;
}

/** Subscribes to an RxJS observable, feeding the sink. */
function subscribe(observable, sink) {
  return new Promise((resolve, reject) => {
    observable.subscribe({
      next: (v) => sink.add(v),
      error: reject,
      complete: () => resolve(sink),
    });
  });
}

// Each case: `setup()` loads the library once and returns `once()`, one run
// over all items that returns the sink it fed.
const cases = [
  awaitLoopCase(items, fn, at),
  {
    id: "loop-array",
    lib: "floor",
    label: "sequential loop into an array, `out.push(await fn(x))`",
    order: "input",
    consume: "array",
    role: "reference",
    setup: () => async () => {
      const out = [];
      for (const x of items) out.push(await fn(x));
      return fold(out, true);
    },
  },
  {
    id: "generator",
    lib: "floor",
    label: "bare async generator, `for await`",
    order: "input",
    consume: "stream",
    role: "reference",
    setup: () => () => {
      async function* g() {
        for (const x of items) yield await fn(x);
      }
      return drain(g(), true);
    },
  },
  ...["input", "completion"].flatMap((order) => [
    {
      id: `sluice-for-await-${order}`,
      lib: "sluice",
      label: "sluice `for await`",
      order,
      consume: "stream",
      role: "sluice",
      setup: async () => {
        const { map, pipeline } = await loadSluice();
        return () =>
          drain(
            pipeline(map(fn, { concurrency: C })).run(items, { order }),
            order === "input",
          );
      },
    },
    {
      id: `sluice-collect-${order}`,
      lib: "sluice",
      label: "sluice `collect()`",
      order,
      consume: "array",
      role: "sluice",
      setup: async () => {
        const { map, pipeline } = await loadSluice();
        return async () =>
          fold(
            await pipeline(map(fn, { concurrency: C })).run(items, { order })
              .collect(),
            order === "input",
          );
      },
    },
  ]),
  {
    id: "p-map-iterable",
    lib: "p-map",
    label: "`pMapIterable`",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { pMapIterable } = await import("p-map");
      return () => drain(pMapIterable(items, fn, { concurrency: C }), true);
    },
  },
  {
    id: "p-map-iterable-unordered",
    lib: "p-map",
    label: "`pMapIterable`, `preserveOrder: false`",
    order: "completion",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { pMapIterable } = await import("p-map");
      return () =>
        drain(
          pMapIterable(items, fn, { concurrency: C, preserveOrder: false }),
          false,
        );
    },
  },
  {
    id: "p-map",
    lib: "p-map",
    label: "`pMap`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: pMap } = await import("p-map");
      return async () => fold(await pMap(items, fn, { concurrency: C }), true);
    },
  },
  {
    id: "p-queue-add",
    lib: "p-queue",
    label: "`add()` each + `Promise.all`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: PQueue } = await import("p-queue");
      return async () => {
        const queue = new PQueue({ concurrency: C });
        return fold(
          await Promise.all(items.map((x) => queue.add(() => fn(x)))),
          true,
        );
      };
    },
  },
  {
    id: "p-queue-add-all",
    lib: "p-queue",
    label: "`addAll()`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: PQueue } = await import("p-queue");
      return async () => {
        const queue = new PQueue({ concurrency: C });
        return fold(await queue.addAll(items.map((x) => () => fn(x))), true);
      };
    },
  },
  {
    id: "p-limit",
    lib: "p-limit",
    label: "`limit()` each + `Promise.all`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: pLimit } = await import("p-limit");
      return async () => {
        const limit = pLimit(C);
        return fold(
          await Promise.all(items.map((x) => limit(() => fn(x)))),
          true,
        );
      };
    },
  },
  {
    id: "p-limit-map",
    lib: "p-limit",
    label: "`limit.map()`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: pLimit } = await import("p-limit");
      return async () => fold(await pLimit(C).map(items, fn), true);
    },
  },
  {
    id: "async-map-limit",
    lib: "async",
    label: "`mapLimit`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: async } = await import("async");
      return async () => fold(await async.mapLimit(items, C, fn), true);
    },
  },
  {
    id: "fastq",
    lib: "fastq",
    label: "`fastq.promise`, `push()` each + `Promise.all`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { default: fastq } = await import("fastq");
      return async () => {
        const queue = fastq.promise(fn, C);
        return fold(await Promise.all(items.map((x) => queue.push(x))), true);
      };
    },
  },
  {
    id: "rxjs-merge-map",
    lib: "rxjs",
    label: "`from(items).pipe(mergeMap(fn, 16))`, subscribe",
    order: "completion",
    consume: "callback",
    role: "peer",
    setup: async () => {
      const { from, mergeMap } = await import("rxjs");
      return () => subscribe(from(items).pipe(mergeMap(fn, C)), new Sink(null));
    },
  },
  ...[false, true].map((unordered) => ({
    id: unordered ? "effect-stream-unordered" : "effect-stream",
    lib: "effect",
    label: unordered
      ? "`Stream.mapEffect`, `unordered: true`, `runForEach`"
      : "`Stream.mapEffect`, `runForEach`",
    order: unordered ? "completion" : "input",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { Effect, Stream } = await import("effect");
      return () => {
        const sink = new Sink(unordered ? null : at);
        const program = Stream.fromIterable(items).pipe(
          Stream.mapEffect((x) => Effect.promise(() => fn(x)), {
            concurrency: C,
            unordered,
          }),
          Stream.runForEach((v) => Effect.sync(() => sink.add(v))),
        );
        return Effect.runPromise(program).then(() => sink);
      };
    },
  })),
  {
    id: "effect-for-each",
    lib: "effect",
    label: "`Effect.forEach`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: async () => {
      const { Effect } = await import("effect");
      return async () =>
        fold(
          await Effect.runPromise(
            Effect.forEach(items, (x) => Effect.promise(() => fn(x)), {
              concurrency: C,
            }),
          ),
          true,
        );
    },
  },
  {
    id: "streaming-iterables-parallel-map",
    lib: "streaming-iterables",
    label: "`parallelMap`",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { parallelMap } = await import("streaming-iterables");
      return () => drain(parallelMap(C, fn, items), true);
    },
  },
  {
    id: "streaming-iterables-transform",
    lib: "streaming-iterables",
    label: "`transform`",
    order: "completion",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { transform } = await import("streaming-iterables");
      return () => drain(transform(C, fn, items), false);
    },
  },
  {
    id: "hand-pool",
    lib: "hand-written",
    label: "16 workers sharing an index, `out[i] = await fn(items[i])`",
    order: "input",
    consume: "array",
    role: "peer",
    setup: () => async () => {
      const out = new Array(N);
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const i = next++;
          out[i] = await fn(items[i]);
        }
      };
      await Promise.all(Array.from({ length: C }, worker));
      return fold(out, true);
    },
  },
  {
    id: "hand-window",
    lib: "hand-written",
    label: "ordered window of 16 (async generator)",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: () => () => drain(orderedWindow(items, fn, C), true),
  },
  {
    id: "web-streams-transform",
    lib: "Web Streams",
    label: "`ReadableStream.from` → async `TransformStream` (one at a time)",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: () => () =>
      drain(
        ReadableStream.from(items).pipeThrough(
          new TransformStream({
            async transform(x, controller) {
              controller.enqueue(await fn(x));
            },
          }),
        ),
        true,
      ),
  },
  {
    id: "web-streams-window",
    lib: "Web Streams",
    label: "`ReadableStream` pulling a window of 16",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: () => () => drain(windowStream(items, fn, C), true),
  },
];

await main(cases, async (c) => {
  const once = await c.setup();
  const ordered = c.order === "input";
  const { ms, samples } = await timeIterations(
    once,
    (sink) => verify(sink, want, { ordered }),
    {
      warmup: numArg("warmup", 5),
      iters: numArg("iters", 10),
      budgetMs: numArg("budget", 5000),
    },
  );
  return { n: N, ms, samples, nsPerItem: (ms * 1e6) / N, quick: !!args.quick };
});
