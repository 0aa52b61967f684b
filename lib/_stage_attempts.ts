/**
 * The slow path of a map or filter stage: the worker loop of a stage with
 * options (rate limit, `timeoutMs`, `retry`, `onError`, an adaptive limit,
 * per-key order). Plain stages never come here: their loop is
 * `WorkStage#loop` (W1, bench/compare). ARCHITECTURE.md lists the invariants.
 *
 * @module
 */

import { type AdaptiveLimit, isOverload } from "./_adaptive_limit.ts";
import { Deadline, retryDelay } from "./_attempt.ts";
import type { Fifo } from "./_fifo.ts";
import { RateLimiter } from "./_rate_limiter.ts";
import { type RunHost, RUNNING } from "./_run.ts";
import { RETRYING } from "./_run_stats.ts";
import type { Token } from "./_token.ts";
import type { RetryPolicy } from "./retry.ts";
import type { MapSpec } from "./stage.ts";
import type { ErrorDecision, OnError, TaskContext } from "./types.ts";

/**
 * What the slow path asks of its stage (`WorkStage`): its slots, its calls
 * and how a token leaves it. The hot path keeps its own private versions.
 */
export interface AttemptHost {
  readonly name: string;
  /** How many functions the stage runs in turn on an item. */
  readonly tasks: number;
  readonly adaptive: AdaptiveLimit | undefined;
  readonly queue: Fifo<Token>;
  readonly concurrency: number;
  readonly running: number;
  /** Starts `t` on a free slot. */
  start(t: Token): void;
  setConcurrency(n: number, reason: "set" | "adaptive"): void;
  /** The `ctx.signal` of slot `workerId`. */
  slotSignal(workerId: number): AbortSignal;
  /** Slot `workerId` holds `t`, its call not started (rate limit). */
  occupy(workerId: number, t: Token): void;
  /** A call begins: false when a listener stopped the run. */
  beginCall(t: Token, workerId: number): boolean;
  /** Calls the stage function(s), or (`step >= 0`) the one at `step`. */
  call(
    t: Token,
    workerId: number,
    value: unknown,
    signal: AbortSignal,
    step: number,
  ): unknown;
  ctx(t: Token, workerId: number, signal: AbortSignal): TaskContext;
  /** A call succeeded: counted, reported, and `value` moves on. */
  handOn(t: Token, workerId: number, value: unknown, tasks: number): void;
  /** An `onError` substitute moves on (not a completed call). */
  substitute(t: Token, workerId: number, value: unknown): void;
  /** Counts a final failure and fires `"failed"`. */
  failedForGood(t: Token, workerId: number, error: unknown): void;
  /** `onError` said "skip": `t` leaves the run. */
  skip(t: Token, workerId: number, error: unknown): void;
  /** Fires `"retrying"`. */
  retrying(t: Token, workerId: number, error: unknown): void;
  /** Frees a slot; once the run stops, the last one settles it. */
  release(workerId: number): void;
  /** After a failure at its turn, a freed slot takes the next queued token. */
  reuseSlot(): void;
}

/** The attempts of one stage with options, and their timers. */
export class StageAttempts {
  readonly #run: RunHost;
  readonly #stage: AttemptHost;
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #onError: OnError;
  readonly #limiter: RateLimiter | undefined;
  readonly #backoffTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Retries scheduled. */
  retried = 0;
  /** Items waiting out a backoff (holding no slot). */
  backingOff = 0;

  constructor(run: RunHost, stage: AttemptHost, spec: MapSpec) {
    this.#run = run;
    this.#stage = stage;
    this.#retry = spec.retry;
    this.#timeoutMs = spec.timeoutMs;
    this.#onError = spec.onError;
    const { rateLimit } = spec;
    this.#limiter = rateLimit &&
      new RateLimiter(rateLimit.limit, rateLimit.intervalMs);
  }

  /** Workers waiting for the rate limit (they hold a slot, no call yet). */
  get waiting(): number {
    return this.#limiter?.waiting ?? 0;
  }

  /** The run stopped: the rate limit's waiters and the backoffs go. */
  stop(reason: unknown): void {
    this.backingOff = 0;
    this.#limiter?.close(reason);
    for (const timer of this.#backoffTimers) clearTimeout(timer);
    this.#backoffTimers.clear();
  }

  /** A worker of a stage with options: `t` first, then queued tokens. */
  async worker(t: Token, workerId: number): Promise<void> {
    const run = this.#run;
    const stage = this.#stage;
    for (let next: Token | undefined = t; next !== undefined;) {
      stage.occupy(workerId, next);
      // false: the slot was released (the run is stopping).
      if (!await this.#attempts(next, workerId)) return;
      next = run.state === RUNNING && stage.running <= stage.concurrency
        ? stage.queue.shift()
        : undefined;
      if (next === undefined) stage.release(workerId);
      run.pump();
    }
  }

  /**
   * Runs `t` through the stage's function(s) until it succeeds, goes to wait
   * out a retry backoff (holding no slot: the worker goes on with the next
   * queued token), or fails for good. Resolves false once the worker has
   * released its slot.
   */
  async #attempts(t: Token, workerId: number): Promise<boolean> {
    const run = this.#run;
    const stage = this.#stage;
    const tasks = stage.tasks;
    const wholeStage = this.#retry?.scope === "stage" || tasks === 1;
    let value = t.step === 0 ? t.value : t.partial;
    const slot = stage.slotSignal(workerId);
    for (;;) {
      const limiter = this.#limiter;
      if (limiter !== undefined && !limiter.tryAcquire()) {
        try {
          await limiter.acquire(slot);
        } catch {
          // The run stopped while waiting.
        }
      }
      if (run.state !== RUNNING) return this.#quit(workerId);
      // One attempt: the whole sequence, or (scope "task") one function.
      t.attempt++;
      if (!stage.beginCall(t, workerId)) return this.#quit(workerId);
      const input = value;
      let error: unknown;
      let ok = false;
      const deadline = this.#timeoutMs === undefined
        ? undefined
        : new Deadline(slot, this.#timeoutMs, `Stage "${stage.name}"`);
      const began = stage.adaptive === undefined ? 0 : performance.now();
      try {
        const signal = deadline ? deadline.signal : slot;
        value = await stage.call(
          t,
          workerId,
          value,
          signal,
          wholeStage ? -1 : t.step,
        );
        ok = true;
      } catch (e) {
        error = e;
      }
      if (deadline !== undefined && deadline.end()) {
        ok = false;
        error = deadline.reason;
      }
      if (run.state !== RUNNING) return this.#quit(workerId);
      if (ok && stage.adaptive !== undefined) {
        this.#adapt(began, false);
        // A listener of what it started stopped the run.
        if (run.state !== RUNNING) return this.#quit(workerId);
      }
      if (ok && !wholeStage && ++t.step < tasks) {
        t.attempt = 0; // the next function gets its own attempts
        continue;
      }
      if (ok) {
        t.step = 0;
        t.partial = undefined;
        // Scope "task": "completed" names the stage's last function.
        stage.handOn(t, workerId, value, wholeStage ? 0 : tasks);
        return true;
      }
      // Failed: retry (the slot is free meanwhile), or a final failure.
      value = input;
      const delay = this.#retryDelay(t, workerId, slot, error);
      if (stage.adaptive !== undefined) {
        this.#adapt(began, typeof delay === "number" || isOverload(error));
        // A "concurrency" listener stopped the run.
        if (run.state !== RUNNING) return this.#quit(workerId);
      }
      if (typeof delay === "number") {
        t.partial = value;
        this.#backoff(t, delay);
        return true;
      }
      if (delay !== undefined) error = delay.error; // retryIf threw
      return await this.#finalFailure(t, workerId, error);
    }
  }

  /** The worker gives its slot back (the run is stopping): false. */
  #quit(workerId: number): false {
    this.#stage.release(workerId);
    return false;
  }

  /**
   * Feeds the adaptive limit one finished attempt (begun at `began`) and
   * applies a new limit.
   */
  #adapt(began: number, overloaded: boolean): void {
    const stage = this.#stage;
    const limit = stage.adaptive!;
    const ms = performance.now() - began;
    if (limit.sample(ms, overloaded, stage.running - 1)) {
      stage.setConcurrency(limit.limit, "adaptive");
    }
  }

  /**
   * The wait before retrying `t`, or undefined for no retry (or
   * `{ error }` when `retryIf` threw).
   */
  #retryDelay(
    t: Token,
    workerId: number,
    signal: AbortSignal,
    error: unknown,
  ): number | undefined | { error: unknown } {
    const retry = this.#retry;
    if (retry === undefined || t.attempt >= retry.attempts) return undefined;
    const ctx = this.#stage.ctx(t, workerId, signal);
    const delay = retryDelay(retry, t.attempt, error, ctx);
    if (typeof delay !== "number") return delay;
    this.retried++;
    if (this.#run.stats.listening & RETRYING) {
      this.#stage.retrying(t, workerId, error);
    }
    return delay;
  }

  /** Waits out a backoff holding no slot, then `t` re-enters the stage first. */
  #backoff(t: Token, delay: number): void {
    const run = this.#run;
    if (run.state !== RUNNING) return; // a "retrying" listener stopped it
    this.backingOff++;
    const timer = setTimeout(() => {
      this.#backoffTimers.delete(timer);
      this.backingOff--;
      if (run.state !== RUNNING) return;
      const stage = this.#stage;
      if (stage.running < stage.concurrency) stage.start(t);
      else stage.queue.unshift(t); // a retrying item keeps its place
    }, delay);
    this.#backoffTimers.add(timer);
  }

  /** Applies `onError` to an item that failed for good. */
  async #finalFailure(
    t: Token,
    workerId: number,
    error: unknown,
  ): Promise<boolean> {
    const run = this.#run;
    const stage = this.#stage;
    stage.failedForGood(t, workerId, error);
    t.step = 0;
    t.partial = undefined;
    // A "failed" listener stopped the run.
    if (run.state !== RUNNING) return this.#quit(workerId);
    const onError = this.#onError;
    let decision: ErrorDecision | unknown = onError;
    let cause = error;
    if (typeof onError === "function") {
      const ctx = stage.ctx(t, workerId, stage.slotSignal(workerId));
      try {
        decision = await onError(error, t.value, ctx);
      } catch (thrown) {
        decision = "fail";
        cause = thrown;
      }
      if (run.state !== RUNNING) return this.#quit(workerId);
    }
    if (decision === "skip") {
      stage.skip(t, workerId, error);
      return true;
    }
    if (
      typeof decision === "object" && decision !== null && "value" in decision
    ) {
      stage.substitute(t, workerId, decision.value);
      return true;
    }
    if (decision !== "fail") {
      cause = new TypeError(
        `'onError' must return "fail", "skip" or { value }: got ${
          typeof decision === "string"
            ? JSON.stringify(decision)
            : typeof decision
        }`,
      );
    }
    run.fault(stage.name, t, cause);
    stage.release(workerId);
    stage.reuseSlot();
    return false;
  }
}
