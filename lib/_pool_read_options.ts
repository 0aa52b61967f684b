// The options of a Pool and of its run() and map() calls, validated and read
// into what `PoolCore` and a map run take (the public option types are in
// pool_options.ts).
import { readRetry, type RetryOptions, type RetryPolicy } from "./retry.ts";
import { type AdaptiveOptions, readConcurrency } from "./_adaptive_limit.ts";
import type { Source, TaskContext } from "./types.ts";
import { RateLimiter, readRateLimit } from "./_rate_limiter.ts";
import type { Tuning } from "./_pool_job.ts";
import type { MapRun } from "./_pool_map.ts";
import type {
  PoolMapOptions,
  PoolOptions,
  PoolRunOptions,
} from "./pool_options.ts";
import { isSource } from "./_source.ts";
import {
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  readTimeout,
  show,
} from "./_validate.ts";

/** A pool's options, validated. */
export interface PoolConfig {
  concurrency: number | AdaptiveOptions;
  retry: RetryPolicy | undefined;
  timeoutMs: number | undefined;
  limiter: RateLimiter | undefined;
  maxQueued: number;
  /** `onFull: "reject"`. */
  rejects: boolean;
  signal: AbortSignal | undefined;
}

/** `new Pool(options)`'s options, validated. */
export function readPoolOptions(options: PoolOptions | undefined): PoolConfig {
  assertOptions("options", options, "new Pool()", [
    "concurrency",
    "rateLimit",
    "retry",
    "timeoutMs",
    "maxQueued",
    "onFull",
    "signal",
  ]);
  const {
    concurrency = 1,
    rateLimit,
    retry,
    timeoutMs,
    maxQueued = Infinity,
    onFull = "wait",
    signal,
  } = options ?? {};
  const limits = readConcurrency(concurrency);
  assertInteger("maxQueued", maxQueued, 1, true);
  assertOneOf("onFull", onFull, ["wait", "reject"] as const);
  assertSignal(signal);
  const limit = readRateLimit(rateLimit);
  const policy = readRetry(retry);
  return {
    concurrency: limits,
    retry: policy,
    timeoutMs: readTimeout(timeoutMs),
    limiter: limit && new RateLimiter(limit.limit, limit.intervalMs),
    maxQueued,
    rejects: onFull === "reject",
    signal,
  };
}

function readPriority(priority: unknown): number {
  if (typeof priority !== "number") {
    throw new TypeError(
      `'priority' must be a finite number: current value is ${show(priority)}`,
    );
  }
  if (!Number.isFinite(priority)) {
    throw new RangeError(
      `'priority' must be a finite number: current value is ${priority}`,
    );
  }
  return priority;
}

/**
 * A `run()` call's `retry` over the pool's: the fields it gives replace the
 * pool's, the others stay the pool's (or take their defaults when the pool
 * has no retry).
 */
function overrideRetry(
  pool: RetryPolicy | undefined,
  retry: RetryOptions,
): RetryPolicy {
  const own = readRetry(retry)!; // validates the call's own fields
  if (pool === undefined) return own;
  const merged: Record<string, unknown> = { ...pool };
  for (const [key, value] of Object.entries(retry)) {
    if (value !== undefined) merged[key] = value;
  }
  return readRetry(merged as RetryOptions)!;
}

/** A `run()` call's options, validated. */
export interface RunCall {
  signal: AbortSignal | undefined;
  priority: number;
  /** Its own retry and timeout, when it gave either. */
  tuning: Tuning | undefined;
}

/**
 * `pool.run(fn, options)`'s options, validated; its `retry` and `timeoutMs`
 * over the pool's.
 */
export function readRunOptions(
  options: PoolRunOptions | undefined,
  poolRetry: RetryPolicy | undefined,
  poolTimeoutMs: number | undefined,
): RunCall {
  assertOptions("options", options, "pool.run()", [
    "signal",
    "priority",
    "retry",
    "timeoutMs",
  ]);
  const { signal, priority = 0, retry, timeoutMs } = options ?? {};
  assertSignal(signal);
  readPriority(priority);
  let tuning: Tuning | undefined;
  if (retry !== undefined || timeoutMs !== undefined) {
    tuning = {
      retry: retry === undefined ? poolRetry : overrideRetry(poolRetry, retry),
      timeoutMs: timeoutMs === undefined
        ? poolTimeoutMs
        : readTimeout(timeoutMs),
    };
  }
  return { signal, priority, tuning };
}

/** `pool.map(fn, items, options)`'s input and options, validated. */
export function readMapOptions(
  fn: (item: unknown, ctx: TaskContext) => unknown,
  items: Source<unknown>,
  options: PoolMapOptions | undefined,
): MapRun {
  if (!isSource(items)) {
    throw new TypeError(
      `'items' must be an Iterable, an AsyncIterable or a ReadableStream: current value is ${
        show(items)
      }`,
    );
  }
  assertOptions("options", options, "pool.map()", [
    "order",
    "signal",
    "priority",
    "bufferSize",
  ]);
  const {
    order = "input",
    signal,
    priority = 0,
    bufferSize = 1024,
  } = options ?? {};
  assertOneOf("order", order, ["input", "completion"] as const);
  assertSignal(signal);
  readPriority(priority);
  assertInteger("bufferSize", bufferSize, 1);
  return {
    fn,
    items,
    ordered: order === "input",
    signal,
    priority,
    bufferSize,
  };
}
