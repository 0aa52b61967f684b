import assert from "node:assert/strict";
import { batch, flatten, map, type Pipeline, pipeline } from "../mod.ts";

Deno.test("pipeline() takes pipelines among its stages and runs their stages in order", async () => {
  const parse = pipeline(
    map((s: string) => Number(s), { name: "parse" }),
    map((n: number) => n + 1),
  );
  const pack = pipeline(batch<number>({ maxSize: 2 }), flatten<number>());
  const all: Pipeline<string, string> = pipeline(
    parse,
    map((n: number) => n * 10),
    pack,
    map((n: number) => `#${n}`),
  );
  assert.equal(all.stages.length, 6);
  assert.deepEqual(all.names, [
    "parse",
    "map#2",
    "map#3",
    "batch#4",
    "flatten#5",
    "map#6",
  ]);
  assert.deepEqual(await all.run(["1", "2", "3"]).collect(), [
    "#20",
    "#30",
    "#40",
  ]);
});

Deno.test("pipeline() keeps stage names unique when a pipeline or a name appears twice", async () => {
  const inc = pipeline(map((n: number) => n + 1, { name: "inc" }));
  const twice = pipeline(inc, inc, map((n: number) => n, { name: "inc" }));
  assert.deepEqual(twice.names, ["inc", "inc#2", "inc#3"]);
  const flow = twice.run([1, 2]);
  assert.deepEqual(await flow.collect(), [3, 4]);
  assert.deepEqual(flow.stats().stages.map((s) => s.name), twice.names);
});

Deno.test("pipeline() refuses a part that is neither a stage nor a pipeline", () => {
  assert.throws(
    () => pipeline({ stages: [] } as never),
    {
      name: "TypeError",
      message:
        "'stages[0]' must be a stage made by map(), filter(), batch() or flatten(), or a Pipeline: current value is object",
    },
  );
});

Deno.test("pipeline() infers types through nested pipelines (type-checked)", () => {
  const a = pipeline(map((s: string) => s.length));
  const b = pipeline(map((n: number) => n > 2));
  const ab: Pipeline<string, boolean> = pipeline(a, b);
  // @ts-expect-error: a pipeline of booleans cannot follow one of strings
  pipeline(b, a);
  assert.equal(ab.stages.length, 2);
});
