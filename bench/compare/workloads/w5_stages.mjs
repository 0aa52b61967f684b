// W5, three stages: `--n` items (100,000) through
// map `x + 1` (concurrency 8) → batch 32 → map over the batch `xs.map(x * 2)`
// (concurrency 4) → flatten → map `y - 1` (concurrency 8), all async;
// each item x comes out as 2x + 1. Floors: the same work as a sequential loop
// and as chained async generators.
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
import { effectStreamPeers, mapEffect, peerCase } from "../cases.mjs";
import { batches, flattenAsync, orderedWindow } from "../hand.mjs";

const N = numArg("n", 100_000);
const SIZE = 32;
// deno-lint-ignore require-await
const f1 = async (x) => x + 1;
// deno-lint-ignore require-await
const f2 = async (xs) => xs.map((x) => x * 2);
// deno-lint-ignore require-await
const f3 = async (y) => y - 1;

const items = range(N);
const want = expected(items.map((x) => 2 * x + 1));
const at = (k) => 2 * k + 1;

async function drain(iterable, ordered) {
  const sink = new Sink(ordered ? at : null);
  for await (const v of iterable) sink.add(v);
  return sink;
}

const sluiceCases = ["input", "completion"].flatMap((order) =>
  ["for-await", "collect"].map((how) => ({
    id: `sluice-${how}-${order}`,
    lib: "sluice",
    label: `sluice \`${how === "collect" ? "collect()" : "for await"}\``,
    order,
    consume: how === "collect" ? "array" : "stream",
    role: "sluice",
    setup: async () => {
      const { batch, flatten, map, pipeline } = await loadSluice();
      const p = pipeline(
        map(f1, { concurrency: 8 }),
        batch({ maxSize: SIZE }),
        map(f2, { concurrency: 4 }),
        flatten(),
        map(f3, { concurrency: 8 }),
      );
      const ordered = order === "input";
      if (how === "for-await") {
        return () => drain(p.run(items, { order }), ordered);
      }
      return async () => {
        const sink = new Sink(ordered ? at : null);
        sink.addAll(await p.run(items, { order }).collect());
        return sink;
      };
    },
  }))
);

const cases = [
  floorCase(
    "sequential loop",
    () => async () => {
      const sink = new Sink(at);
      let b = [];
      const flush = async () => {
        for (const y of await f2(b)) sink.add(await f3(y));
        b = [];
      };
      for (const x of items) {
        b.push(await f1(x));
        if (b.length === SIZE) await flush();
      }
      if (b.length > 0) await flush();
      return sink;
    },
  ),
  {
    id: "generators",
    lib: "hand-written",
    label: "chained async generators (one at a time)",
    order: "input",
    consume: "stream",
    role: "reference",
    setup: () => () => {
      async function* mapGen(it, f) {
        for await (const x of it) yield await f(x);
      }
      return drain(
        mapGen(flattenAsync(mapGen(batches(mapGen(items, f1), SIZE), f2)), f3),
        true,
      );
    },
  },
  ...sluiceCases,
  ...[true, false].map((preserveOrder) =>
    peerCase({
      id: preserveOrder ? "p-map-iterable" : "p-map-iterable-unordered",
      lib: "p-map",
      label: preserveOrder
        ? "`pMapIterable` ×3 + hand-written batch and flatten"
        : "`pMapIterable` ×3, `preserveOrder: false`, + batch and flatten",
      order: preserveOrder ? "input" : "completion",
      make: ({ pMapIterable }) => {
        const m = (it, f, concurrency) =>
          pMapIterable(it, f, { concurrency, preserveOrder });
        return () =>
          drain(
            m(
              flattenAsync(m(batches(m(items, f1, 8), SIZE), f2, 4)),
              f3,
              8,
            ),
            preserveOrder,
          );
      },
    })
  ),
  ...[true, false].map((ordered) =>
    peerCase({
      id: ordered
        ? "streaming-iterables-parallel-map"
        : "streaming-iterables-transform",
      lib: "streaming-iterables",
      label: ordered
        ? "`parallelMap` → `batch` → `parallelMap` → `flatten` → `parallelMap`"
        : "`transform` → `batch` → `transform` → `flatten` → `transform`",
      order: ordered ? "input" : "completion",
      make: ({ batch, flatten, parallelMap, transform }) => {
        const m = ordered ? parallelMap : transform;
        return () =>
          drain(
            m(8, f3, flatten(m(4, f2, batch(SIZE, m(8, f1, items))))),
            ordered,
          );
      },
    })
  ),
  ...effectStreamPeers(
    (mod, unordered) => () => {
      const { Effect, Stream } = mod;
      const sink = new Sink(unordered ? null : at);
      return Effect.runPromise(
        Stream.fromIterable(items).pipe(
          mapEffect(mod, f1, 8, unordered),
          Stream.grouped(SIZE),
          mapEffect(mod, f2, 4, unordered),
          Stream.flattenIterable,
          mapEffect(mod, f3, 8, unordered),
          Stream.runForEach((v) => Effect.sync(() => sink.add(v))),
        ),
      ).then(() => sink);
    },
    "`mapEffect` → `grouped` → `mapEffect` → `flattenIterable` → `mapEffect`",
  ),
  peerCase({
    id: "rxjs",
    lib: "rxjs",
    label: "`mergeMap` → `bufferCount` → `mergeMap` → `mergeAll` → `mergeMap`",
    order: "completion",
    consume: "callback",
    make: ({ bufferCount, from, mergeAll, mergeMap }) => () => {
      const sink = new Sink(null);
      return new Promise((resolve, reject) => {
        from(items).pipe(
          mergeMap(f1, 8),
          bufferCount(SIZE),
          mergeMap(f2, 4),
          mergeAll(),
          mergeMap(f3, 8),
        ).subscribe({
          next: (v) => sink.add(v),
          error: reject,
          complete: () => resolve(sink),
        });
      });
    },
  }),
  {
    id: "hand-window",
    lib: "hand-written",
    label: "ordered windows (8, 4, 8) + batch and flatten generators",
    order: "input",
    consume: "stream",
    role: "peer",
    setup: () => () =>
      drain(
        orderedWindow(
          flattenAsync(
            orderedWindow(batches(orderedWindow(items, f1, 8), SIZE), f2, 4),
          ),
          f3,
          8,
        ),
        true,
      ),
  },
];

await mainTimed(
  cases,
  N,
  (sink, c) => verify(sink, want, { ordered: c.order === "input" }),
);
