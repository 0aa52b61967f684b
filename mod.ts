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
// Only the public names: the engine's descriptions and helpers stay inside.
export { asCompleted } from "./lib/as_completed.ts";
export { batch, type BatchOptions } from "./lib/batch.ts";
export { Batcher } from "./lib/batcher.ts";
export type {
  BatchContext,
  BatcherCache,
  BatcherCloseOptions,
  BatcherOptions,
  BatcherProcessOptions,
  BatcherRetryOptions,
  BatcherStats,
  ProcessBatch,
} from "./lib/batcher_options.ts";
export {
  type Dashboard,
  dashboard,
  type DashboardLevel,
  type DashboardOptions,
  type StatsSource,
} from "./lib/dashboard.ts";
export { PipelineError, QueueFullError, TimeoutError } from "./lib/errors.ts";
export { filter } from "./lib/filter.ts";
export { flatten, type FlattenOptions } from "./lib/flatten.ts";
export {
  type ConcurrencyEventDetail,
  DEFAULT_BUFFER_SIZE,
  DEFAULT_PROGRESS_INTERVAL_MS,
  Flow,
  type FlowEventMap,
  type FlowListener,
  type FlowListenerOptions,
  type ItemEventDetail,
  type QueuedEventDetail,
  type RunnableStages,
  type RunOptions,
} from "./lib/flow.ts";
export { map, type MapOptions, type Task } from "./lib/map.ts";
export {
  type Part,
  Pipeline,
  pipeline,
  type TransformPair,
} from "./lib/pipeline.ts";
export { Pool } from "./lib/pool.ts";
export type {
  PoolCloseOptions,
  PoolMapOptions,
  PoolOptions,
  PoolRunOptions,
} from "./lib/pool_options.ts";
export type {
  PoolActiveDetail,
  PoolCancelledDetail,
  PoolCompletedDetail,
  PoolConcurrencyDetail,
  PoolEventMap,
  PoolFailedDetail,
  PoolIdleDetail,
  PoolQueuedDetail,
  PoolRetryingDetail,
  PoolStats,
} from "./lib/pool_stats.ts";
export { formatProgress, type ProgressOptions } from "./lib/progress.ts";
export {
  fromWire,
  type ProgressSnapshot,
  type ProgressStageSnapshot,
  type ProgressWire,
  toWire,
  type WireLatency,
} from "./lib/progress_wire.ts";
export type { RetryOptions } from "./lib/retry.ts";
export {
  DEFAULT_HEARTBEAT_MS,
  SSE_HEADERS,
  type SSEOptions,
  toSSE,
} from "./lib/sse.ts";
export type { Stage } from "./lib/stage.ts";
export type {
  AdaptiveStats,
  FailureRecord,
  FlowStats,
  ItemRecord,
  ItemStatus,
  ItemTransition,
  LatencyStats,
  StageStats,
  WorkerState,
} from "./lib/stats.ts";
export type {
  AdaptiveConcurrency,
  ErrorDecision,
  LimitChange,
  OnError,
  RateLimit,
  Source,
  TaskContext,
} from "./lib/types.ts";
