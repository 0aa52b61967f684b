// W2, heavy tail: `--n` timer-based tasks (400), 90 % uniform 1–10 ms and
// 10 % uniform 50–200 ms from a seeded PRNG, concurrency 10. Each case runs
// once per process (after a tiny warm-up) and reports its makespan, its time
// to first result (when the consumer got the first value) and its largest
// read-ahead (items pulled from the lazy source minus items consumed).
// References, computed by the runner from the same durations: the lower bound
// max(sum/10, max) and an ideal greedy pool.
import {
  args,
  expected,
  floorCase,
  main,
  now,
  numArg,
  range,
  Sink,
  sleep,
  verify,
} from "../common.mjs";
import {
  effectStreamPeers,
  mapEffect,
  peerCase,
  sluiceStreamCase,
  streamingMapPeers,
} from "../cases.mjs";
import { heavyTailDurations } from "../durations.mjs";

const N = numArg("n", 400);
const C = 10;
const durations = heavyTailDurations(N);
const want = expected(range(N));
const at = (k) => k;

/** The task: sleeps its duration, returns its index. */
const task = async (i) => {
  await sleep(durations[i]);
  return i;
};

/**
 * One measured run. `body(source, sink)` consumes `source` (a lazy generator
 * of indices that counts what it hands out) into `sink`.
 */
function harness() {
  let pulled = 0;
  let maxAhead = 0;
  let sink;
  function* source(n = N) {
    for (let i = 0; i < n; i++) {
      pulled++;
      const ahead = pulled - sink.count;
      if (ahead > maxAhead) maxAhead = ahead;
      yield i;
    }
  }
  return {
    source,
    async measure(body, ordered) {
      // Warm-up on 20 tasks of 0–1 ms: loads and compiles the code paths.
      const saved = durations.slice(0, 20);
      for (let i = 0; i < 20; i++) durations[i] = i & 1;
      sink = new Sink(null);
      await body(source(20), sink);
      durations.splice(0, 20, ...saved);
      pulled = 0;
      maxAhead = 0;
      sink = new Sink(ordered ? at : null);
      const start = now();
      await body(source(), sink);
      const ms = now() - start;
      const error = verify(sink, want, { ordered });
      if (error) throw new Error(error);
      return { ms, ttfrMs: sink.firstAt - start, readAhead: maxAhead };
    },
  };
}

/** Streams `iterable` into the sink. */
async function drain(iterable, sink) {
  for await (const v of iterable) sink.add(v);
}

const sluiceCase = (order, bufferSize) =>
  sluiceStreamCase(order, bufferSize, ({ map, pipeline }) => {
    const p = pipeline(map(task, { concurrency: C }));
    return (source, sink) => drain(p.run(source, { order, bufferSize }), sink);
  });

// The streaming maps W1 and W3 run too.
const stream = streamingMapPeers(
  task,
  C,
  (map) => (source, sink) => drain(map(source), sink),
  { "p-map-iterable": "`pMapIterable` (`backpressure` = concurrency)" },
);

const cases = [
  floorCase(
    "sequential `await task(i)` loop",
    () => async (source, sink) => {
      for (const i of source) sink.add(await task(i));
    },
    { only: "full" },
  ),
  {
    id: "greedy-pool",
    lib: "hand-written",
    label: "greedy pool: 10 workers sharing one iterator",
    order: "completion",
    consume: "callback",
    role: "reference",
    setup: () => async (source, sink) => {
      const worker = async () => {
        for (const i of source) sink.add(await task(i));
      };
      await Promise.all(Array.from({ length: C }, worker));
    },
  },
  {
    id: "chunks",
    lib: "hand-written",
    label: "chunks of 10, `Promise.all`",
    order: "input",
    consume: "array",
    role: "reference",
    setup: () => async (source, sink) => {
      let chunk = [];
      for (const i of source) {
        chunk.push(task(i));
        if (chunk.length === C) {
          sink.addAll(await Promise.all(chunk));
          chunk = [];
        }
      }
      sink.addAll(await Promise.all(chunk));
    },
  },
  sluiceCase("input"),
  sluiceCase("completion"),
  sluiceCase("input", 64),
  sluiceCase("input", 16),
  stream.pMapIterable,
  peerCase({
    id: "p-map-iterable-unbounded",
    lib: "p-map",
    label: "`pMapIterable`, `backpressure: Infinity`",
    order: "input",
    make: ({ pMapIterable }) => (source, sink) =>
      drain(
        pMapIterable(source, task, {
          concurrency: C,
          backpressure: Infinity,
        }),
        sink,
      ),
  }),
  stream.pMapIterableUnordered,
  peerCase({
    id: "p-map",
    lib: "p-map",
    label: "`pMap`",
    order: "input",
    consume: "array",
    make: ({ default: pMap }) => async (source, sink) =>
      sink.addAll(await pMap(source, task, { concurrency: C })),
  }),
  peerCase({
    id: "p-queue",
    lib: "p-queue",
    label: "`add()` each, results as they complete",
    order: "completion",
    consume: "callback",
    make: ({ default: PQueue }) => async (source, sink) => {
      const queue = new PQueue({ concurrency: C });
      for (const i of source) {
        queue.add(() => task(i)).then((v) => sink.add(v));
      }
      await queue.onIdle();
    },
  }),
  peerCase({
    id: "p-limit",
    lib: "p-limit",
    label: "`limit()` each + `Promise.all`",
    order: "input",
    consume: "array",
    make: ({ default: pLimit }) => async (source, sink) => {
      const limit = pLimit(C);
      sink.addAll(
        await Promise.all(Array.from(source, (i) => limit(() => task(i)))),
      );
    },
  }),
  peerCase({
    id: "async-map-limit",
    lib: "async",
    label: "`mapLimit`",
    order: "input",
    consume: "array",
    make: ({ default: async }) => async (source, sink) =>
      sink.addAll(await async.mapLimit(source, C, task)),
  }),
  peerCase({
    id: "fastq",
    lib: "fastq",
    label: "`fastq.promise`, results as they complete",
    order: "completion",
    consume: "callback",
    make: ({ default: fastq }) => async (source, sink) => {
      const queue = fastq.promise(task, C);
      for (const i of source) queue.push(i).then((v) => sink.add(v));
      await queue.drained();
    },
  }),
  peerCase({
    id: "rxjs-merge-map",
    lib: "rxjs",
    label: "`mergeMap(task, 10)`, subscribe",
    order: "completion",
    consume: "callback",
    make: ({ from, mergeMap }) => (source, sink) =>
      new Promise((resolve, reject) => {
        from(source).pipe(mergeMap(task, C)).subscribe({
          next: (v) => sink.add(v),
          error: reject,
          complete: resolve,
        });
      }),
  }),
  ...effectStreamPeers(
    (mod, unordered) => (source, sink) => {
      const { Effect, Stream } = mod;
      return Effect.runPromise(
        Stream.fromIterable(source).pipe(
          mapEffect(mod, task, C, unordered),
          Stream.runForEach((v) => Effect.sync(() => sink.add(v))),
        ),
      );
    },
    "`Stream.mapEffect`",
  ),
  stream.parallelMap,
  stream.transform,
  stream.window,
];

await main(cases, async (c) => {
  const body = await c.setup();
  const h = harness();
  const result = await h.measure(body, c.order === "input");
  return { n: N, quick: !!args.quick, ...result };
});
