// W1, per-item overhead: `--n` items (100,000 or 1,000,000) of
// `async (x) => x * 2`, concurrency 16, in input order and in completion
// order; the output consumed as a stream (`for await`, or the library's
// callback) where the library can stream, else as the array it returns.
// Floors: the sequential loop `for (const x of items) sink.add(await fn(x))`,
// the same loop collecting into an array first (what `collect()` and the
// materialising peers produce), and a bare async generator consumed with
// `for await`.
import {
  awaitLoopCase,
  expected,
  loadSluice,
  mainTimed,
  numArg,
  range,
  Sink,
  verify,
} from "../common.mjs";
import {
  effectStreamPeers,
  mapEffect,
  peerCase,
  streamingMapPeers,
} from "../cases.mjs";
import { windowStream } from "../hand.mjs";

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

// The streaming maps W2 and W3 run too, each run streamed into a fresh sink.
const stream = streamingMapPeers(
  fn,
  C,
  (map, ordered) => () => drain(map(items), ordered),
);

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
  stream.pMapIterable,
  stream.pMapIterableUnordered,
  peerCase({
    id: "p-map",
    lib: "p-map",
    label: "`pMap`",
    order: "input",
    consume: "array",
    make: ({ default: pMap }) => async () =>
      fold(await pMap(items, fn, { concurrency: C }), true),
  }),
  peerCase({
    id: "p-queue-add",
    lib: "p-queue",
    label: "`add()` each + `Promise.all`",
    order: "input",
    consume: "array",
    make: ({ default: PQueue }) => async () => {
      const queue = new PQueue({ concurrency: C });
      return fold(
        await Promise.all(items.map((x) => queue.add(() => fn(x)))),
        true,
      );
    },
  }),
  peerCase({
    id: "p-queue-add-all",
    lib: "p-queue",
    label: "`addAll()`",
    order: "input",
    consume: "array",
    make: ({ default: PQueue }) => async () => {
      const queue = new PQueue({ concurrency: C });
      return fold(await queue.addAll(items.map((x) => () => fn(x))), true);
    },
  }),
  peerCase({
    id: "p-limit",
    lib: "p-limit",
    label: "`limit()` each + `Promise.all`",
    order: "input",
    consume: "array",
    make: ({ default: pLimit }) => async () => {
      const limit = pLimit(C);
      return fold(
        await Promise.all(items.map((x) => limit(() => fn(x)))),
        true,
      );
    },
  }),
  peerCase({
    id: "p-limit-map",
    lib: "p-limit",
    label: "`limit.map()`",
    order: "input",
    consume: "array",
    make: ({ default: pLimit }) => async () =>
      fold(await pLimit(C).map(items, fn), true),
  }),
  peerCase({
    id: "async-map-limit",
    lib: "async",
    label: "`mapLimit`",
    order: "input",
    consume: "array",
    make: ({ default: async }) => async () =>
      fold(await async.mapLimit(items, C, fn), true),
  }),
  peerCase({
    id: "fastq",
    lib: "fastq",
    label: "`fastq.promise`, `push()` each + `Promise.all`",
    order: "input",
    consume: "array",
    make: ({ default: fastq }) => async () => {
      const queue = fastq.promise(fn, C);
      return fold(await Promise.all(items.map((x) => queue.push(x))), true);
    },
  }),
  peerCase({
    id: "rxjs-merge-map",
    lib: "rxjs",
    label: "`from(items).pipe(mergeMap(fn, 16))`, subscribe",
    order: "completion",
    consume: "callback",
    make: ({ from, mergeMap }) => () =>
      subscribe(from(items).pipe(mergeMap(fn, C)), new Sink(null)),
  }),
  ...effectStreamPeers(
    (mod, unordered) => () => {
      const { Effect, Stream } = mod;
      const sink = new Sink(unordered ? null : at);
      const program = Stream.fromIterable(items).pipe(
        mapEffect(mod, fn, C, unordered),
        Stream.runForEach((v) => Effect.sync(() => sink.add(v))),
      );
      return Effect.runPromise(program).then(() => sink);
    },
    "`Stream.mapEffect`",
    ", `runForEach`",
  ),
  peerCase({
    id: "effect-for-each",
    lib: "effect",
    label: "`Effect.forEach`",
    order: "input",
    consume: "array",
    make: ({ Effect }) => async () =>
      fold(
        await Effect.runPromise(
          Effect.forEach(items, (x) => Effect.promise(() => fn(x)), {
            concurrency: C,
          }),
        ),
        true,
      ),
  }),
  stream.parallelMap,
  stream.transform,
  peerCase({
    id: "hand-pool",
    lib: "hand-written",
    label: "16 workers sharing an index, `out[i] = await fn(items[i])`",
    order: "input",
    consume: "array",
    load: null,
    make: () => async () => {
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
  }),
  stream.window,
  peerCase({
    id: "web-streams-transform",
    lib: "Web Streams",
    label: "`ReadableStream.from` → async `TransformStream` (one at a time)",
    order: "input",
    load: null,
    make: () => () =>
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
  }),
  peerCase({
    id: "web-streams-window",
    lib: "Web Streams",
    label: "`ReadableStream` pulling a window of 16",
    order: "input",
    load: null,
    make: () => () => drain(windowStream(items, fn, C), true),
  }),
];

await mainTimed(
  cases,
  N,
  (sink, c) => verify(sink, want, { ordered: c.order === "input" }),
);
