// W3, backpressure: `--n` items (1,000,000) from a lazy async generator,
// through a concurrent map (`async (x) => x * 2`, concurrency 16), into a slow
// consumer: it takes each value at once but, every 1,000 values, waits 1 ms
// (a sink that flushes in chunks), so on average it is slower than the
// producer. Reported: wall time, the largest read-ahead (items pulled from the
// generator minus items the consumer has taken; a value on its way to the
// consumer counts as not yet taken), RSS growth (the largest RSS seen,
// sampled at each flush, minus the RSS after a warm-up and a GC; it includes
// V8 growing its young generation once, which is not retained data), and the
// live heap after a forced GC at 25 %, 50 % and 75 % of the input: flat
// memory means no growth from 25 % to 75 %. One run per process.
import process from "node:process";
import {
  args,
  expected,
  floorCase,
  gc,
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
import { mapStream } from "../hand.mjs";

const N = numArg("n", 1_000_000);
const C = 16;
const FLUSH_EVERY = 1000;
// deno-lint-ignore require-await
const fn = async (x) => x * 2;
const at = (k) => 2 * k;

let pulled = 0;
let maxAhead = 0;
let sink = new Sink(null);
let maxRss = 0; // over the whole run
// Live heap (after a forced GC) at 25 %, 50 % and 75 % of the run; the time
// those collections take is left out of the wall time.
let checkpoints = [];
let heapAt = [];
let gcMs = 0;

/** The lazy source: counts what it hands out, and the read-ahead. */
async function* source(n) {
  for (let i = 0; i < n; i++) {
    pulled++;
    const ahead = pulled - sink.count;
    if (ahead > maxAhead) maxAhead = ahead;
    yield i;
  }
}

/**
 * The slow consumer: returns a promise (to be awaited) every FLUSH_EVERY
 * values, undefined otherwise.
 */
function consume(v) {
  sink.add(v);
  if (sink.count % FLUSH_EVERY !== 0) return undefined;
  const rss = process.memoryUsage().rss;
  if (rss > maxRss) maxRss = rss;
  if (checkpoints.length > 0 && sink.count >= checkpoints[0]) {
    checkpoints.shift();
    const t0 = now();
    gc();
    heapAt.push(process.memoryUsage().heapUsed);
    gcMs += now() - t0;
  }
  return sleep(1);
}

/** `for await` into the slow consumer. */
async function drain(iterable) {
  for await (const v of iterable) {
    const p = consume(v);
    if (p !== undefined) await p;
  }
}

const sluiceCase = (order, bufferSize) =>
  sluiceStreamCase(order, bufferSize, ({ map, pipeline }) => {
    const p = pipeline(map(fn, { concurrency: C }));
    return (src) => drain(p.run(src, { order, bufferSize }));
  });

// The streaming maps W1 and W2 run too.
const stream = streamingMapPeers(fn, C, (map) => (src) => drain(map(src)));

const cases = [
  floorCase(
    "sequential loop: `for await` source, `await fn(x)`",
    () => async (src) => {
      for await (const x of src) {
        const p = consume(await fn(x));
        if (p !== undefined) await p;
      }
    },
  ),
  sluiceCase("input"),
  sluiceCase("completion"),
  sluiceCase("input", 64),
  stream.pMapIterable,
  stream.pMapIterableUnordered,
  peerCase({
    id: "p-map",
    lib: "p-map",
    label: "`pMap` (materialises, then the consumer)",
    order: "input",
    consume: "array",
    make: ({ default: pMap }) => async (src) => {
      for (const v of await pMap(src, fn, { concurrency: C })) {
        const p = consume(v);
        if (p !== undefined) await p;
      }
    },
  }),
  peerCase({
    id: "rxjs-merge-map",
    lib: "rxjs",
    label: "`mergeMap(fn, 16)` → `concatMap(consume)`",
    order: "completion",
    consume: "callback",
    make: ({ concatMap, from, mergeMap }) => {
      const none = [0];
      return (src) =>
        new Promise((resolve, reject) => {
          from(src).pipe(
            mergeMap(fn, C),
            concatMap((v) => consume(v) ?? none),
          ).subscribe({ error: reject, complete: resolve });
        });
    },
  }),
  ...effectStreamPeers(
    (mod, unordered) => (src) => {
      const { Effect, Stream } = mod;
      return Effect.runPromise(
        Stream.fromAsyncIterable(src, (e) => e).pipe(
          mapEffect(mod, fn, C, unordered),
          Stream.runForEach((v) => {
            const p = consume(v);
            return p === undefined ? Effect.void : Effect.promise(() => p);
          }),
        ),
      );
    },
    "`Stream.mapEffect`",
  ),
  stream.parallelMap,
  stream.transform,
  stream.window,
  peerCase({
    id: "web-streams-transform",
    lib: "Web Streams",
    label: "`ReadableStream.from` → async `TransformStream`",
    order: "input",
    load: null,
    make: () => (src) =>
      drain(ReadableStream.from(src).pipeThrough(mapStream(fn))),
  }),
];

await main(cases, async (c) => {
  const body = await c.setup();
  const ordered = c.order === "input";
  // Warm-up: 20,000 items the same way.
  sink = new Sink(null);
  await body(source(20_000));
  pulled = maxAhead = 0;
  sink = new Sink(ordered ? at : null);
  gc();
  await sleep(10);
  gc();
  const rss0 = process.memoryUsage().rss;
  maxRss = rss0;
  checkpoints = [N / 4, N / 2, (3 * N) / 4];
  heapAt = [];
  gcMs = 0;
  const start = now();
  await body(source(N));
  const ms = now() - start - gcMs;
  const error = verify(sink, expected(range(N).map((x) => 2 * x)), { ordered });
  if (error) throw new Error(error);
  return {
    n: N,
    quick: !!args.quick,
    ms,
    readAhead: maxAhead,
    rssGrowthMB: (maxRss - rss0) / 2 ** 20,
    heapMidMB: heapAt[1] / 2 ** 20,
    heapGrowthMB: (heapAt[2] - heapAt[0]) / 2 ** 20,
  };
});
