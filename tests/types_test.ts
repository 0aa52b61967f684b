// Compile-time checks of type inference through stages, pipelines and flows.
// `deno test` and `deno check` type-check this file: an `Equal` that does not
// hold, or a `@ts-expect-error` line that compiles, fails the check. The
// tests also run the pipelines, so each inferred type meets real values.
import assert from "node:assert/strict";
import {
  batch,
  filter,
  flatten,
  type Flow,
  map,
  type Pipeline,
  pipeline,
  type Stage,
  type TaskContext,
  type TransformPair,
} from "../mod.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;

Deno.test("pipeline() infers types through map, batch, flatten and map", async () => {
  const p = pipeline(
    map((x: number) => String(x)),
    batch({ maxSize: 2 }),
    flatten(),
    map((s) => s.length),
  );
  const _check: Equal<typeof p, Pipeline<number, number>> = true;
  assert.deepEqual(await p.run([1, 22, 333]).collect(), [1, 2, 3]);
});

Deno.test("map() infers the output of an async function as the awaited value", async () => {
  const stage = map(async (x: number) => {
    await Promise.resolve();
    return { n: x };
  });
  const _check: Equal<typeof stage, Stage<number, { n: number }>> = true;
  const p = pipeline(stage, map((o) => o.n + 1));
  const _checkP: Equal<typeof p, Pipeline<number, number>> = true;
  assert.deepEqual(await p.run([1]).collect(), [2]);
});

Deno.test("map() with several tasks infers the type of the last one", async () => {
  const stage = map([(x: number) => x + 1, (x) => `#${x}`, (s) => [s]]);
  const _check: Equal<typeof stage, Stage<number, string[]>> = true;
  const p = pipeline(stage);
  const _checkP: Equal<typeof p, Pipeline<number, string[]>> = true;
  assert.deepEqual(await p.run([1]).collect(), [["#2"]]);
});

Deno.test("filter() with a type guard narrows, without one keeps the type", async () => {
  const guard = filter((x: string | number): x is string =>
    typeof x === "string"
  );
  const _checkGuard: Equal<typeof guard, Stage<string | number, string>> = true;
  const plain = filter((x: string | number) => x !== 0);
  const _checkPlain: Equal<
    typeof plain,
    Stage<string | number, string | number>
  > = true;
  const p = pipeline(guard, map((s) => s.toUpperCase()));
  const _checkP: Equal<typeof p, Pipeline<string | number, string>> = true;
  assert.deepEqual(await p.run(["a", 1, "b"]).collect(), ["A", "B"]);
});

Deno.test("batch() and flatten() infer element types from their neighbours", async () => {
  const p = pipeline(
    map((x: number) => ({ id: x })),
    batch({ maxSize: 2 }),
    map((xs) => xs.map((o) => o.id)),
  );
  const _check: Equal<typeof p, Pipeline<number, number[]>> = true;
  const q = pipeline(map((s: string) => s.split("")), flatten());
  const _checkQ: Equal<typeof q, Pipeline<string, string>> = true;
  const r = pipeline(batch<Date>({ maxSize: 3 }));
  const _checkR: Equal<typeof r, Pipeline<Date, Date[]>> = true;
  assert.deepEqual(await p.run([1, 2, 3]).collect(), [[1, 2], [3]]);
  assert.deepEqual(await q.run(["ab"]).collect(), ["a", "b"]);
});

Deno.test("pipeline() with zero stages is Pipeline<T, T>", async () => {
  const p = pipeline<number>();
  const _check: Equal<typeof p, Pipeline<number, number>> = true;
  assert.deepEqual(await p.run([1]).collect(), [1]);
});

Deno.test("pipeline() infers through eight stages", async () => {
  const p = pipeline(
    map((x: number) => x + 1),
    map((x) => String(x)),
    map((s) => s.length),
    filter((n) => n > 0),
    batch({ maxSize: 2 }),
    flatten(),
    map((n) => n > 1),
    map((b) => (b ? "big" : "small") as "big" | "small"),
  );
  const _check: Equal<typeof p, Pipeline<number, "big" | "small">> = true;
  assert.deepEqual(await p.run([1, 9]).collect(), ["small", "big"]);
});

Deno.test("run() returns a Flow of the output type, and its consumers are typed", async () => {
  const p = pipeline(map((x: number) => [x, String(x)] as const));
  const flow = p.run([1]);
  const _checkFlow: Equal<typeof flow, Flow<readonly [number, string]>> = true;
  const collected = p.run([1]).collect();
  const _checkCollect: Equal<
    typeof collected,
    Promise<(readonly [number, string])[]>
  > = true;
  const readable = p.run([1]).readable;
  const _checkReadable: Equal<
    typeof readable,
    ReadableStream<readonly [number, string]>
  > = true;
  for await (const item of flow) {
    const _checkItem: Equal<typeof item, readonly [number, string]> = true;
    assert.deepEqual(item, [1, "1"]);
  }
  assert.deepEqual(await collected, [[1, "1"]]);
  await readable.cancel();
});

Deno.test("run() accepts every kind of source of the input type", async () => {
  const p = pipeline(map((x: number) => x));
  async function* gen() {
    yield 1;
  }
  const flows = [
    p.run([1]),
    p.run(new Set([1])),
    p.run(gen()),
    p.run(ReadableStream.from([1])),
    p.run([1], { id: (item: number, index: number) => `${item}:${index}` }),
  ];
  for (const flow of flows) assert.deepEqual(await flow.collect(), [1]);
  const chars = pipeline(map((c: string) => c)).run("ab");
  assert.deepEqual(await chars.collect(), ["a", "b"]);
});

Deno.test("stage functions receive a typed TaskContext", async () => {
  const p = pipeline(map((x: number, ctx) => {
    const _check: Equal<typeof ctx, TaskContext> = true;
    const _signal: AbortSignal = ctx.signal;
    const _worker: number = ctx.workerId;
    return x;
  }));
  assert.deepEqual(await p.run([1]).collect(), [1]);
});

Deno.test("transform() is a TransformPair usable with pipeThrough", async () => {
  const p = pipeline(map((x: number) => String(x)));
  const pair = p.transform();
  const _check: Equal<typeof pair, TransformPair<number, string>> = true;
  const out = ReadableStream.from([1, 2]).pipeThrough(p.transform());
  const _checkOut: Equal<typeof out, ReadableStream<string>> = true;
  assert.deepEqual(await Array.fromAsync(out), ["1", "2"]);
  await pair.writable.close();
  await pair.readable.cancel();
});

// Never called: these lines only have to fail type-checking.
function _typeErrors(): void {
  const nums = pipeline(map((x: number) => x * 2));

  // A mismatched chain: a string stage after a stage producing numbers.
  // @ts-expect-error map((x: string) => x) cannot take numbers
  pipeline(map((x: number) => x * 2), map((x: string) => x));

  // A mismatch further down a longer chain.
  const doubled = map((x: number) => x * 2);
  const pairs = batch<number>({ maxSize: 2 });
  const strings = map((s: string) => s);
  // @ts-expect-error a batch of numbers is not a string
  pipeline(doubled, pairs, strings);

  // @ts-expect-error flatten() needs iterable items
  pipeline(map((x: number) => x), flatten());

  // @ts-expect-error a source of strings for a pipeline of numbers
  nums.run(["a", "b"]);

  // @ts-expect-error an async source of strings for a pipeline of numbers
  nums.run(ReadableStream.from(["a"]));

  // @ts-expect-error a number is not a source
  nums.run(5);

  // @ts-expect-error an unknown order
  nums.run([1], { order: "random" });

  // @ts-expect-error id receives the input type
  nums.run([1], { id: (item: string) => item });

  // @ts-expect-error the output is number, not string
  const _s: Flow<string> = nums.run([1]);

  // @ts-expect-error batch() needs maxSize
  batch({});

  // @ts-expect-error a filter keeps its input type
  const _f: Stage<number, string> = filter((x: number) => x > 0);
}
