/**
 * sluice: async work on streams. Worker pools, multi-stage pipelines,
 * batching and ordered streaming, on web-standard APIs only (Deno, Node, Bun,
 * Cloudflare Workers, browsers).
 *
 * ```ts
 * import { batch, flatten, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = pipeline(
 *   map(async (x: number) => x * 2, { concurrency: 10 }),
 *   batch({ maxSize: 3 }),
 *   map(async (xs: number[]) => xs.map((x) => x + 1)),
 *   flatten(),
 * );
 * assert.deepEqual(await p.run([1, 2, 3, 4]).collect(), [3, 5, 7, 9]);
 * ```
 *
 * @module
 */
export * from "./lib/as_completed.ts";
export * from "./lib/batch.ts";
export * from "./lib/batcher.ts";
export * from "./lib/errors.ts";
export * from "./lib/filter.ts";
export * from "./lib/flatten.ts";
export * from "./lib/flow.ts";
export * from "./lib/map.ts";
export * from "./lib/pipeline.ts";
export * from "./lib/pool.ts";
export * from "./lib/progress.ts";
export * from "./lib/retry.ts";
export * from "./lib/sse.ts";
export * from "./lib/stage.ts";
export * from "./lib/stats.ts";
export * from "./lib/types.ts";
