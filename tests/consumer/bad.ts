// Deliberate type errors: tests/node/consumer.test.mjs asserts that tsc
// reports an error on exactly the lines marked "expect-error" and nowhere
// else, so the declarations really constrain callers.
import { batch, map, pipeline } from "sluice";

// A stage chain whose types do not connect: the first stage yields numbers,
// the second takes strings (tsc flags the first stage of the chain).
pipeline(
  map((s: string) => s.length), // expect-error
  map((s: string) => s.toUpperCase()),
);

// A batch stage yields arrays, not items.
pipeline(
  batch<number>({ maxSize: 2 }), // expect-error
  map((n: number) => n + 1),
);

// A wrong option type.
map((x: number) => x, { concurrency: "4" }); // expect-error

// A result used as the wrong type.
const flow = pipeline(map((x: number) => `${x}`)).run([1]);
const total: number[] = await flow.collect(); // expect-error
void total;
