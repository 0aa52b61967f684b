// A CommonJS consumer (.cts: compiled to require("sluice")), so the
// package's "require" condition resolves its types.
import { map, pipeline, type Pipeline } from "sluice";

export const double: Pipeline<number, number> = pipeline(
  map(async (x: number) => x * 2, { concurrency: 2 }),
);
