// The options shared by `map` and `filter`, validated once for both.
import { readRetry, type RetryOptions, type RetryPolicy } from "./retry.ts";
import type { OnError, RateLimit } from "./types.ts";
import { readRateLimit } from "./_rate_limiter.ts";
import { type AdaptiveOptions, readConcurrency } from "./_adaptive_limit.ts";
import {
  assertFunction,
  assertName,
  assertOneOf,
  assertOptions,
  readTimeout,
} from "./_validate.ts";

/** The validated options shared by `map` and `filter`. */
export interface StageOptions {
  name: string | undefined;
  concurrency: number;
  adaptive: AdaptiveOptions | undefined;
  retry: RetryPolicy | undefined;
  timeoutMs: number | undefined;
  onError: OnError;
  rateLimit: RateLimit | undefined;
  key: ((item: unknown) => unknown) | undefined;
}

/** Every option of `map` and `filter`. */
const MAP_OPTIONS = [
  "name",
  "concurrency",
  "retry",
  "timeoutMs",
  "onError",
  "rateLimit",
  "key",
] as const;

/** Validates the options shared by `map` and `filter` (a `MapOptions`). */
export function readMapOptions(
  options: unknown,
  where: "map()" | "filter()",
): StageOptions {
  assertOptions("options", options, where, MAP_OPTIONS);
  const {
    name,
    concurrency = 1,
    retry,
    timeoutMs,
    onError = "fail",
    rateLimit,
    key,
  } = (options ?? {}) as Record<string, unknown>;
  if (key !== undefined) assertFunction("key", key);
  assertName(name);
  const limit = readConcurrency(concurrency);
  if (typeof onError !== "function") {
    assertOneOf("onError", onError, ["fail", "skip"] as const);
  }
  return {
    name: name as string | undefined,
    concurrency: typeof limit === "number" ? limit : limit.initial,
    adaptive: typeof limit === "number" ? undefined : limit,
    retry: readRetry(retry as RetryOptions | undefined),
    timeoutMs: readTimeout(timeoutMs),
    onError: onError as OnError,
    rateLimit: readRateLimit(rateLimit),
    key: key as ((item: unknown) => unknown) | undefined,
  };
}
