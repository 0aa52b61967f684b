// W4, batching: `--n` items (100,000) grouped into batches of 100, each batch
// handed to one bulk call `async (batch) => batch` (think one INSERT per 100
// rows), the returned batches consumed in input order. Floor: the sequential
// loop that fills an array and awaits the bulk call each time it is full.
import {
  args,
  expected,
  floorCase,
  loadSluice,
  main,
  numArg,
  range,
  Sink,
  timeIterations,
  verify,
} from "../common.mjs";
import { batches, batchStream, mapStream } from "../hand.mjs";

const N = numArg("n", 100_000);
const SIZE = 100;
// deno-lint-ignore require-await
const bulk = async (batch) => batch;

const items = range(N);
const want = expected(items);
const at = (k) => k;

/** Streams batches into a fresh sink. */
async function drain(iterable) {
  const sink = new Sink(at);
  for await (const b of iterable) sink.addBatch(b, SIZE);
  return sink;
}

const cases = [
  floorCase(
    "sequential loop, `await bulk(batch)` when full",
    () => async () => {
      const sink = new Sink(at);
      let b = [];
      for (const x of items) {
        b.push(x);
        if (b.length === SIZE) {
          sink.addBatch(await bulk(b), SIZE);
          b = [];
        }
      }
      if (b.length > 0) sink.addBatch(await bulk(b), SIZE);
      return sink;
    },
  ),
  {
    id: "generator",
    lib: "hand-written",
    label: "async generator batcher, `for await`",
    order: "input",
    consume: "stream",
    role: "reference",
    setup: () => () => {
      async function* bulked() {
        for await (const b of batches(items, SIZE)) yield await bulk(b);
      }
      return drain(bulked());
    },
  },
  {
    id: "sluice-for-await",
    lib: "sluice",
    label: "sluice `batch` → `map(bulk)`, `for await`",
    order: "input",
    consume: "stream",
    role: "sluice",
    setup: async () => {
      const { batch, map, pipeline } = await loadSluice();
      return () =>
        drain(pipeline(batch({ maxSize: SIZE }), map(bulk)).run(items));
    },
  },
  {
    id: "sluice-collect",
    lib: "sluice",
    label: "sluice `batch` → `map(bulk)`, `collect()`",
    order: "input",
    consume: "array",
    role: "sluice",
    setup: async () => {
      const { batch, map, pipeline } = await loadSluice();
      return async () => {
        const sink = new Sink(at);
        const out = await pipeline(batch({ maxSize: SIZE }), map(bulk))
          .run(items).collect();
        for (const b of out) sink.addBatch(b, SIZE);
        return sink;
      };
    },
  },
  {
    id: "streaming-iterables",
    lib: "streaming-iterables",
    label: "`batch(100)` → `map(bulk)`",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { batch, map } = await import("streaming-iterables");
      return () => drain(map(bulk, batch(SIZE, items)));
    },
  },
  {
    id: "effect-stream",
    lib: "effect",
    label: "`Stream.grouped(100)` → `mapEffect(bulk)`",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: async () => {
      const { Effect, Stream } = await import("effect");
      return () => {
        const sink = new Sink(at);
        return Effect.runPromise(
          Stream.fromIterable(items).pipe(
            Stream.grouped(SIZE),
            Stream.mapEffect((b) => Effect.promise(() => bulk(b))),
            Stream.runForEach((b) => Effect.sync(() => sink.addBatch(b, SIZE))),
          ),
        ).then(() => sink);
      };
    },
  },
  {
    id: "rxjs",
    lib: "rxjs",
    label: "`bufferCount(100)` → `concatMap(bulk)`",
    order: "input",
    consume: "callback",
    role: "peer",
    setup: async () => {
      const { bufferCount, concatMap, from } = await import("rxjs");
      return () => {
        const sink = new Sink(at);
        return new Promise((resolve, reject) => {
          from(items).pipe(bufferCount(SIZE), concatMap(bulk)).subscribe({
            next: (b) => sink.addBatch(b, SIZE),
            error: reject,
            complete: () => resolve(sink),
          });
        });
      };
    },
  },
  {
    id: "async-cargo",
    lib: "async",
    label: "`cargo(worker, 100)`, `push(items)`",
    order: "input",
    consume: "callback",
    role: "peer",
    setup: async () => {
      const { default: async } = await import("async");
      return async () => {
        const sink = new Sink(at);
        const cargo = async.cargo(async (b) => {
          sink.addBatch(await bulk(b), SIZE);
        }, SIZE);
        cargo.push(items);
        await cargo.drain();
        return sink;
      };
    },
  },
  {
    id: "web-streams",
    lib: "Web Streams",
    label: "batching `TransformStream` → async `TransformStream`",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: () => () =>
      drain(
        ReadableStream.from(items).pipeThrough(batchStream(SIZE)).pipeThrough(
          mapStream(bulk),
        ),
      ),
  },
];

await main(cases, async (c) => {
  const once = await c.setup();
  const { ms, samples } = await timeIterations(
    once,
    (sink) => verify(sink, want, { ordered: true, batchSize: SIZE }),
    {
      warmup: numArg("warmup", 5),
      iters: numArg("iters", 10),
      budgetMs: numArg("budget", 5000),
    },
  );
  return { n: N, ms, samples, nsPerItem: (ms * 1e6) / N, quick: !!args.quick };
});
