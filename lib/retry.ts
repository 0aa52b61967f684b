import type { TaskContext } from "./types.ts";
import {
  assertBoolean,
  assertDuration,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  MAX_DELAY_MS,
  show,
} from "./_validate.ts";

/** The `retry` option of a stage (and of a `Pool`). */
export interface RetryOptions {
  /**
   * Tries in all, the first one included (`1`: no retry). With
   * `scope: "task"`, each function of a multi-task stage gets this many.
   * @default {3}
   */
  attempts?: number;
  /**
   * Delay before the first retry; retry `n` waits `delayMs * factor^(n-1)`,
   * capped at `maxDelayMs`.
   * @default {100}
   */
  delayMs?: number;
  /**
   * Growth of the delay from one retry to the next.
   * @default {2}
   */
  factor?: number;
  /**
   * Cap of the delay.
   * @default {30000}
   */
  maxDelayMs?: number;
  /**
   * Full jitter: each delay is drawn uniformly from `[0, delay]`, so retries of
   * many items spread out. `false` waits the exact delay.
   * @default {true}
   */
  jitter?: boolean;
  /**
   * Decides per error whether to try again (`ctx.attempt` is the attempt that
   * failed). A cancelled run never retries. A `retryIf` that throws counts as
   * "no", and its error becomes the item's error.
   * @default {() => true}
   */
  retryIf?: (error: unknown, ctx: TaskContext) => boolean;
  /**
   * On a multi-task stage: `"task"` retries only the function that failed, with
   * its input; `"stage"` re-runs the whole sequence from the first function.
   * @default {"task"}
   */
  scope?: "task" | "stage";
  /**
   * The random source for jitter, returning a number in `[0, 1)`; for tests.
   * @default {Math.random}
   */
  random?: () => number;
}

/** Retry options with every default filled in. */
export interface RetryPolicy {
  /** Tries in all. */
  readonly attempts: number;
  /** First delay. */
  readonly delayMs: number;
  /** Growth factor. */
  readonly factor: number;
  /** Delay cap. */
  readonly maxDelayMs: number;
  /** Full jitter on or off. */
  readonly jitter: boolean;
  /** Per-error decision. */
  readonly retryIf: (error: unknown, ctx: TaskContext) => boolean;
  /** `"task"` or `"stage"`. */
  readonly scope: "task" | "stage";
  /** Random source in `[0, 1)`. */
  readonly random: () => number;
}

/**
 * Validates a `retry` option and fills in its defaults.
 *
 * @param retry The user's option (`undefined`: no retry).
 * @returns The policy, or `undefined` when there is no retry.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When a number is out of range.
 *
 * @example
 * ```ts
 * import { readRetry } from "./retry.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = readRetry({ attempts: 5 })!;
 * assert.equal(policy.attempts, 5);
 * assert.equal(policy.delayMs, 100);
 * assert.throws(() => readRetry({ attempts: 0 }), RangeError);
 * ```
 */
export function readRetry(
  retry: RetryOptions | undefined,
): RetryPolicy | undefined {
  if (retry === undefined) return undefined;
  assertOptions("retry", retry, "retry", [
    "attempts",
    "delayMs",
    "factor",
    "maxDelayMs",
    "jitter",
    "retryIf",
    "scope",
    "random",
  ]);
  const {
    attempts = 3,
    delayMs = 100,
    factor = 2,
    maxDelayMs = 30_000,
    jitter = true,
    retryIf = () => true,
    scope = "task",
    random = Math.random,
  } = retry;
  assertInteger("retry.attempts", attempts, 1);
  assertDuration("retry.delayMs", delayMs);
  if (typeof factor !== "number") {
    throw new TypeError(
      `'retry.factor' must be a finite number >= 1: current value is ${
        show(factor)
      }`,
    );
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new RangeError(
      `'retry.factor' must be a finite number >= 1: current value is ${factor}`,
    );
  }
  assertDuration("retry.maxDelayMs", maxDelayMs, { infinity: true });
  assertBoolean("retry.jitter", jitter);
  assertFunction("retry.retryIf", retryIf);
  assertOneOf("retry.scope", scope, ["task", "stage"] as const);
  assertFunction("retry.random", random);
  return {
    attempts,
    delayMs,
    factor,
    maxDelayMs,
    jitter,
    retryIf,
    scope,
    random,
  };
}

/**
 * The wait before retry `n` (1 for the first retry): `delayMs * factor^(n-1)`
 * capped at `maxDelayMs`, then, with jitter, drawn uniformly from `[0, that]`.
 *
 * @param policy The retry policy.
 * @param n The retry number, from 1.
 * @returns The delay in milliseconds.
 *
 * @example
 * ```ts
 * import { backoffDelay, readRetry } from "./retry.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = readRetry({ delayMs: 10, factor: 3, maxDelayMs: 50, jitter: false })!;
 * assert.deepEqual([1, 2, 3].map((n) => backoffDelay(policy, n)), [10, 30, 50]);
 * ```
 */
export function backoffDelay(policy: RetryPolicy, n: number): number {
  const delay = Math.min(
    policy.maxDelayMs,
    MAX_DELAY_MS, // maxDelayMs may be Infinity: a timer waits no longer
    policy.delayMs * policy.factor ** (n - 1),
  );
  return policy.jitter ? policy.random() * delay : delay;
}
