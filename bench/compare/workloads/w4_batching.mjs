// W4, batching: `--n` items (100,000) grouped into batches of 100, each batch
// handed to one bulk call `async (batch) => batch` (think one INSERT per 100
// rows), the returned batches consumed in input order. Floor: the sequential
// loop that fills an array and awaits the bulk call each time it is full.
import {
  expected,
  floorCase,
  loadSluice,
  mainTimed,
  numArg,
  range,
  Sink,
  verify,
} from "../common.mjs";
import { peerCase } from "../cases.mjs";
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
  peerCase({
    id: "streaming-iterables",
    lib: "streaming-iterables",
    label: "`batch(100)` → `map(bulk)`",
    order: "input",
    make: ({ batch, map }) => () => drain(map(bulk, batch(SIZE, items))),
  }),
  peerCase({
    id: "effect-stream",
    lib: "effect",
    label: "`Stream.grouped(100)` → `mapEffect(bulk)`",
    order: "input",
    make: ({ Effect, Stream }) => () => {
      const sink = new Sink(at);
      return Effect.runPromise(
        Stream.fromIterable(items).pipe(
          Stream.grouped(SIZE),
          Stream.mapEffect((b) => Effect.promise(() => bulk(b))),
          Stream.runForEach((b) => Effect.sync(() => sink.addBatch(b, SIZE))),
        ),
      ).then(() => sink);
    },
  }),
  peerCase({
    id: "rxjs",
    lib: "rxjs",
    label: "`bufferCount(100)` → `concatMap(bulk)`",
    order: "input",
    consume: "callback",
    make: ({ bufferCount, concatMap, from }) => () => {
      const sink = new Sink(at);
      return new Promise((resolve, reject) => {
        from(items).pipe(bufferCount(SIZE), concatMap(bulk)).subscribe({
          next: (b) => sink.addBatch(b, SIZE),
          error: reject,
          complete: () => resolve(sink),
        });
      });
    },
  }),
  peerCase({
    id: "async-cargo",
    lib: "async",
    label: "`cargo(worker, 100)`, `push(items)`",
    order: "input",
    consume: "callback",
    make: ({ default: async }) => async () => {
      const sink = new Sink(at);
      const cargo = async.cargo(async (b) => {
        sink.addBatch(await bulk(b), SIZE);
      }, SIZE);
      cargo.push(items);
      await cargo.drain();
      return sink;
    },
  }),
  peerCase({
    id: "web-streams",
    lib: "Web Streams",
    label: "batching `TransformStream` → async `TransformStream`",
    order: "input",
    load: null,
    make: () => () =>
      drain(
        ReadableStream.from(items).pipeThrough(batchStream(SIZE)).pipeThrough(
          mapStream(bulk),
        ),
      ),
  }),
];

await mainTimed(
  cases,
  N,
  (sink) => verify(sink, want, { ordered: true, batchSize: SIZE }),
);
