// W6, request coalescing: `--n` (100,000) concurrent single-item calls, made
// in one synchronous loop and awaited with `Promise.all`, coalesced into bulk
// calls of up to 100 by `async (keys) => keys.map((k) => k * 2)`: sluice's
// Batcher against dataloader. Floors: the sequential `await fn(x)` loop and
// `Promise.all` over direct calls (no batching at all).
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
import { peerCase } from "../cases.mjs";

const N = numArg("n", 100_000);
const SIZE = 100;
// deno-lint-ignore require-await
const fn = async (x) => x * 2;
// deno-lint-ignore require-await
const bulk = async (keys) => keys.map((k) => k * 2);

const items = range(N);
const want = expected(items.map((x) => 2 * x));
const at = (k) => 2 * k;

function fold(values) {
  const sink = new Sink(at);
  sink.addAll(values);
  return sink;
}

const batcherCase = (concurrency) => ({
  id: `sluice-batcher-${concurrency === Infinity ? "unbounded" : concurrency}`,
  lib: "sluice",
  label: `\`Batcher\`, \`maxSize: 100\`, \`concurrency: ${concurrency}\``,
  order: "input",
  consume: "array",
  role: "sluice",
  setup: async () => {
    const { Batcher } = await loadSluice();
    if (typeof Batcher !== "function") {
      throw new Error("Batcher not available in this build of sluice");
    }
    return async () => {
      const batcher = new Batcher(bulk, { maxSize: SIZE, concurrency });
      const out = await Promise.all(items.map((x) => batcher.process(x)));
      await batcher.close();
      return fold(out);
    };
  },
});

const cases = [
  awaitLoopCase(items, fn, at),
  {
    id: "promise-all",
    lib: "floor",
    label: "`Promise.all` of direct calls (no batching)",
    order: "input",
    consume: "array",
    role: "reference",
    setup: () => async () => fold(await Promise.all(items.map(fn))),
  },
  batcherCase(Infinity),
  batcherCase(1),
  peerCase({
    id: "dataloader",
    lib: "dataloader",
    label: "`DataLoader`, `maxBatchSize: 100`, `cache: false`",
    order: "input",
    consume: "array",
    make: ({ default: DataLoader }) => async () => {
      const loader = new DataLoader(bulk, {
        maxBatchSize: SIZE,
        cache: false,
      });
      return fold(await Promise.all(items.map((x) => loader.load(x))));
    },
  }),
  peerCase({
    id: "dataloader-default",
    lib: "dataloader",
    label: "`DataLoader`, default options (cache on, one batch per tick)",
    order: "input",
    consume: "array",
    make: ({ default: DataLoader }) => async () => {
      const loader = new DataLoader(bulk);
      return fold(await Promise.all(items.map((x) => loader.load(x))));
    },
  }),
];

await mainTimed(
  cases,
  N,
  (sink) => verify(sink, want, { ordered: true }),
  (ms) => ({ perSecond: N / (ms / 1000) }),
);
