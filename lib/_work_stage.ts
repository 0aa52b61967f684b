/**
 * A map or filter stage at run time: `concurrency` worker slots, a FIFO queue
 * of tokens waiting for one, and the worker loops. ARCHITECTURE.md ("Work
 * stages") lists the invariants.
 *
 * @module
 */

import { AdaptiveLimit, isOverload } from "./_adaptive_limit.ts";
import { Deadline, retryDelay, SlotSignals } from "./_attempt.ts";
import { Fifo } from "./_fifo.ts";
import { KeyOrder } from "./_key_order.ts";
import { Histogram } from "./_histogram.ts";
import { RateLimiter } from "./_rate_limiter.ts";
import { type RunHost, RUNNING } from "./_run.ts";
import {
  adaptiveStats,
  COMPLETED,
  FAILED,
  NO_ERROR,
  RETRYING,
  type RunStats,
  SKIPPED,
  type StagePart,
  STARTED,
  TIMED_EVENTS,
} from "./_run_stats.ts";
import type { Times, Token } from "./_token.ts";
import type { RetryPolicy } from "./retry.ts";
import type { MapSpec, TaskFn } from "./stage.ts";
import type { StageStats, WorkerState } from "./stats.ts";
import type { ErrorDecision, OnError, TaskContext } from "./types.ts";

/** Runs `fns` in turn on `value`; `t.step` says which one is running. */
async function runSequence(
  fns: readonly TaskFn[],
  t: Token,
  value: unknown,
  ctx: TaskContext,
): Promise<unknown> {
  for (t.step = 0; t.step < fns.length; t.step++) {
    value = await fns[t.step](value, ctx);
  }
  t.step = 0;
  return value;
}

/** A task's name in events: its function's name, or `task#<position>`. */
function taskName(fns: readonly TaskFn[], step: number): string {
  return fns[step].name || `task#${step + 1}`;
}

/**
 * A map or filter stage of one run. Invariants: `running <= concurrency`
 * (after a lowering: once enough calls ended);
 * the queue is non-empty only while every slot is busy; worker ids in use are
 * distinct and below the highest `concurrency` the stage had. Every call settles asynchronously, so the
 * run is never re-entered from a stage function.
 */
export class WorkStage implements StagePart {
  readonly kind: "map" | "filter";
  readonly name: string;
  readonly #run: RunHost;
  /** `run.stats`, read on every call. */
  readonly #stats: RunStats;
  readonly #fns: readonly TaskFn[];
  /**
   * Worker slots. It changes while running (`flow.setConcurrency`, or an
   * adaptive limit): a worker finding `running > concurrency` after a call
   * releases its slot instead of taking the next token.
   */
  concurrency: number;
  /** The adaptive limit that sets `concurrency`, if any. */
  readonly adaptive: AdaptiveLimit | undefined;
  /** No retry, timeout, rate limit, error policy or adaptive limit: the fast path (W1). */
  readonly plain: boolean;
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #onError: OnError;
  readonly #limiter: RateLimiter | undefined;
  /** Per-key order (`key` option), if any. */
  readonly #keys: KeyOrder | undefined;
  /**
   * Its workers read their next item from the source themselves (`nextItem`):
   * the first stage, plain, of a run whose source answers synchronously.
   */
  readsSource = false;

  /** Calls in flight (or waiting for the rate limit), one per busy slot. */
  running = 0;
  /** Tokens waiting for a worker. */
  readonly queue: Fifo<Token> = new Fifo<Token>();
  /** Worker ids free for reuse. */
  readonly #freeIds: number[] = [];
  #nextId = 0;
  /**
   * One `ctx.signal` per worker slot (made when the slot id is first taken),
   * all aborted when the run stops: a signal has one call's listeners at
   * most. `#slotSignal` is `#signals.signals`, read once per worker start.
   */
  readonly #signals = new SlotSignals();
  readonly #slotSignal: AbortSignal[] = this.#signals.signals;
  /** Per worker slot: its token (null when idle) and start time. */
  readonly #slotToken: (Token | null)[] = [];
  readonly #slotSince: number[] = [];
  readonly #backoffTimers = new Set<ReturnType<typeof setTimeout>>();

  // Stats.
  completed = 0;
  failed = 0;
  skipped = 0;
  retried = 0;
  backingOff = 0;
  readonly #latency = new Histogram();
  readonly #queueWait = new Histogram();
  /** Moving average of timed calls (ms), to decide whether to time them all. */
  recentMs = 0;
  #timedCalls = 0;

  constructor(run: RunHost, name: string, spec: MapSpec) {
    this.#run = run;
    this.#stats = run.stats;
    this.kind = spec.kind;
    this.name = name;
    this.#fns = spec.fns;
    this.concurrency = spec.concurrency;
    const { retry, timeoutMs, onError, rateLimit, adaptive, key } = spec;
    this.adaptive = adaptive && new AdaptiveLimit(adaptive);
    this.#keys = key && new KeyOrder(key);
    this.plain = !retry && timeoutMs === undefined && !rateLimit &&
      onError === "fail" && !adaptive && !key;
    this.#retry = retry;
    this.#timeoutMs = timeoutMs;
    this.#onError = onError;
    this.#limiter = rateLimit &&
      new RateLimiter(rateLimit.limit, rateLimit.intervalMs);
  }

  /**
   * `t` enters: it starts at once on a free slot, else waits its turn (in a
   * keyed stage, first for its key).
   */
  enter(t: Token): void {
    if (this.#keys !== undefined && !this.#admitKey(t)) return;
    this.#enqueue(t);
  }

  /** Whether `t` holds its key now; a key function that throws fails the run. */
  #admitKey(t: Token): boolean {
    try {
      return this.#keys!.admit(t);
    } catch (error) {
      this.#run.fault(this.name, t, error);
      return false;
    }
  }

  /**
   * The next item of `t`'s key goes on, once `t` has left the stage (its
   * key was handed over by `KeyOrder.release` before `t` moved): starting it
   * first could run a listener that stops the run while `t` is still
   * counted here, and `t` would be counted twice (cancelled, then out).
   */
  #nextOfKey(next: Token): void {
    if (this.#run.state === RUNNING) this.#enqueue(next);
  }

  /** `t` starts at once on a free slot, else waits in the queue. */
  #enqueue(t: Token): void {
    if (this.running < this.concurrency) return this.start(t);
    let times = t.times;
    if (times === null && this.#stats.timeAll) {
      times = t.times = { bornAt: NaN, enteredAt: 0 };
    }
    if (times !== null) times.enteredAt = performance.now();
    this.queue.push(t);
  }

  /** Starts `t` on a free slot. */
  start(t: Token): void {
    this.running++;
    this.#run.callStarted();
    const workerId = this.#freeIds.length > 0
      ? this.#freeIds.pop()!
      : this.#slot();
    if (!this.plain) {
      this.#slowWorker(t, workerId);
      return;
    }
    this.#loop(t, workerId);
  }

  /**
   * Sets the number of slots: raising starts waiting tokens at once; lowering
   * interrupts nothing (workers release their slots as their calls end).
   */
  setConcurrency(n: number, reason: "set" | "adaptive"): void {
    const from = this.concurrency;
    if (n === from) return;
    this.concurrency = n;
    const run = this.#run;
    run.concurrencyChanged(this.name, from, n, reason);
    while (run.state === RUNNING && this.running < n) {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.start(next);
    }
    run.pump();
  }

  /** The run stopped: every `ctx.signal` aborts; queued and retrying go. */
  stop(reason: unknown): void {
    this.#signals.abort(reason);
    this.queue.clear();
    this.#keys?.clear();
    this.backingOff = 0;
    this.#limiter?.close(reason);
    for (const timer of this.#backoffTimers) clearTimeout(timer);
    this.#backoffTimers.clear();
  }

  /** A new worker slot id, with its signal. */
  #slot(): number {
    const id = this.#nextId++;
    this.#signals.get(id);
    return id;
  }

  /** Calls the stage function(s) on `value`; may throw synchronously. */
  #call(
    t: Token,
    workerId: number,
    value: unknown,
    signal: AbortSignal,
    step = -1,
  ): unknown {
    const ctx = this.#ctx(t, workerId, signal);
    const fns = this.#fns;
    if (step >= 0) return fns[step](value, ctx);
    return fns.length === 1
      ? fns[0](value, ctx)
      : runSequence(fns, t, value, ctx);
  }

  /** The context of a call (or of a `retryIf` / `onError` decision) on `t`. */
  #ctx(t: Token, workerId: number, signal: AbortSignal): TaskContext {
    return {
      signal,
      workerId,
      itemId: t.id,
      index: t.index,
      attempt: t.attempt,
      stage: this.name,
      context: this.#run.config.context,
    };
  }

  /**
   * A call on `t` begins: its timing and `"started"`. False when a listener
   * stopped the run (then the call must not run).
   */
  #begin(t: Token, workerId: number): boolean {
    const run = this.#run;
    if (run.state !== RUNNING) return false; // stopped by the last pump()
    this.#slotToken[workerId] = t;
    let times = t.times;
    // Decided at call time: once calls are slow, every one is timed.
    if (times === null && this.#stats.timeAll) {
      times = t.times = { bornAt: NaN, enteredAt: 0 };
    }
    if (times !== null) this.#timeStart(times, workerId);
    else this.#slotSince[workerId] = NaN;
    // Reporting is out of line: it keeps this method small enough for V8 to
    // inline into the worker loop (W1 collect() paid 14 % otherwise).
    if (this.#stats.listening === 0) return true;
    return this.#reportStart(t, workerId);
  }

  /** `#begin` with someone listening (or tracking): timing and `"started"`. */
  #reportStart(t: Token, workerId: number): boolean {
    const listening = this.#stats.listening;
    if (t.times === null && (listening & TIMED_EVENTS) !== 0) {
      this.#slotSince[workerId] = performance.now(); // for durationMs
    }
    if ((listening & STARTED) === 0) return true;
    this.#stats.emit(
      "started",
      this.name,
      t,
      workerId,
      NO_ERROR,
      NaN,
      this.#task(t),
    );
    return this.#run.state === RUNNING;
  }

  /**
   * The task an event about `t` concerns, in a multi-task stage: known while
   * functions run one attempt each (retry scope "task"), or once one failed.
   */
  #task(t: Token, failed = false): string | undefined {
    const fns = this.#fns;
    if (fns.length === 1) return undefined;
    return failed || (this.#retry !== undefined && this.#retry.scope === "task")
      ? taskName(fns, t.step)
      : undefined;
  }

  /** How long the call on slot `workerId` has run (NaN if not timed). */
  #elapsed(workerId: number): number {
    return performance.now() - this.#slotSince[workerId];
  }

  /** A call on `t` succeeded: its result moves on (or is filtered out). */
  #handOn(t: Token, workerId: number, value: unknown, tasks = 0): void {
    this.completed++;
    this.#slotToken[workerId] = null;
    if (t.times !== null) this.#timeEnd(workerId);
    if (this.#stats.listening & COMPLETED) {
      this.#reportCompleted(t, workerId, tasks);
      if (this.#run.state !== RUNNING) return; // a listener stopped the run
    }
    this.#pass(t, value);
  }

  #reportCompleted(t: Token, workerId: number, tasks: number): void {
    this.#stats.emit(
      "completed",
      this.name,
      t,
      workerId,
      NO_ERROR,
      this.#elapsed(workerId),
      tasks > 0 ? taskName(this.#fns, tasks - 1) : undefined,
    );
  }

  /** `value` (a result, or an `onError` substitute) moves on. */
  #pass(t: Token, value: unknown): void {
    t.attempt = 0;
    const next = this.#keys?.release(t);
    if (this.kind === "filter") {
      if (value) this.#run.forward(t);
      else this.#run.drop(t);
    } else {
      t.value = value;
      this.#run.forward(t);
    }
    if (next !== undefined) this.#nextOfKey(next);
  }

  /**
   * A plain stage's worker: runs `t`, then keeps taking queued tokens (one
   * `await` per call, no closures); releases its slot when none is left.
   * Never rejects.
   */
  async #loop(t: Token, workerId: number): Promise<void> {
    const run = this.#run;
    const signal = this.#slotSignal[workerId];
    for (;;) {
      t.attempt = 1;
      if (!this.#begin(t, workerId)) return this.#release(workerId);
      let value: unknown;
      try {
        value = await this.#call(t, workerId, t.value, signal);
      } catch (error) {
        await undefined; // a synchronous throw still settles asynchronously
        return this.#taskFailed(t, workerId, error);
      }
      if (run.state !== RUNNING) return this.#release(workerId);
      this.#handOn(t, workerId, value);
      if (run.state !== RUNNING) return this.#release(workerId);
      if (this.running > this.concurrency) { // lowered while it ran
        this.#release(workerId);
        return run.pump();
      }
      let next = this.queue.shift();
      if (next === undefined && this.readsSource) {
        next = run.nextItem();
        // Read here: the pump has nothing to do unless a worker is idle.
        if (next !== undefined && this.running === this.concurrency) {
          t = next;
          continue;
        }
      }
      if (next === undefined) this.#release(workerId);
      run.pump();
      if (next === undefined) return;
      t = next;
    }
  }

  #taskFailed(t: Token, workerId: number, error: unknown): void {
    const run = this.#run;
    if (run.state === RUNNING) {
      this.#failed(t, workerId, error);
      if (run.state === RUNNING) run.fault(this.name, t, error);
    }
    t.step = 0;
    this.#release(workerId);
    this.#reuseSlot();
  }

  /** Frees a worker slot; once the run stops, the last one settles it. */
  #release(workerId: number): void {
    this.running--;
    this.#freeIds.push(workerId);
    this.#slotToken[workerId] = null;
    this.#run.callEnded();
  }

  /** After a failure at its turn, a freed slot takes the next queued token. */
  #reuseSlot(): void {
    if (this.#run.state !== RUNNING || this.running >= this.concurrency) return;
    const next = this.queue.shift();
    if (next !== undefined) this.start(next);
  }

  // ---- the slow path: rate limit, timeouts, retries, error policies --------

  /** A worker of a stage with options: `t` first, then queued tokens. */
  async #slowWorker(t: Token, workerId: number): Promise<void> {
    const run = this.#run;
    for (let next: Token | undefined = t; next !== undefined;) {
      this.#slotToken[workerId] = next;
      this.#slotSince[workerId] = NaN; // until the call starts (rate limit)
      // false: the slot was released (the run is stopping).
      if (!await this.#attempts(next, workerId)) return;
      next = run.state === RUNNING && this.running <= this.concurrency
        ? this.queue.shift()
        : undefined;
      if (next === undefined) this.#release(workerId);
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
    const fns = this.#fns;
    const wholeStage = this.#retry?.scope === "stage" || fns.length === 1;
    let value = t.step === 0 ? t.value : t.partial;
    const slot = this.#signals.get(workerId);
    for (;;) {
      const limiter = this.#limiter;
      if (limiter !== undefined && !limiter.tryAcquire()) {
        try {
          await limiter.acquire(slot);
        } catch {
          // The run stopped while waiting.
        }
      }
      if (run.state !== RUNNING) {
        this.#release(workerId);
        return false;
      }
      // One attempt: the whole sequence, or (scope "task") one function.
      t.attempt++;
      if (!this.#begin(t, workerId)) {
        this.#release(workerId);
        return false;
      }
      const input = value;
      let error: unknown;
      let ok = false;
      const deadline = this.#timeoutMs === undefined
        ? undefined
        : new Deadline(slot, this.#timeoutMs, `Stage "${this.name}"`);
      const began = this.adaptive === undefined ? 0 : performance.now();
      try {
        const signal = deadline ? deadline.signal : slot;
        value = wholeStage
          ? await this.#call(t, workerId, value, signal)
          : await this.#call(t, workerId, value, signal, t.step);
        ok = true;
      } catch (e) {
        error = e;
      }
      if (deadline !== undefined && deadline.end()) {
        ok = false;
        error = deadline.reason;
      }
      if (run.state !== RUNNING) {
        this.#release(workerId);
        return false;
      }
      if (ok && this.adaptive !== undefined) {
        this.#adapt(began, false);
        if (run.state !== RUNNING) { // a listener of what it started stopped it
          this.#release(workerId);
          return false;
        }
      }
      if (ok && !wholeStage && ++t.step < fns.length) {
        t.attempt = 0; // the next function gets its own attempts
        continue;
      }
      if (ok) {
        t.step = 0;
        t.partial = undefined;
        // Scope "task": "completed" names the stage's last function.
        this.#handOn(t, workerId, value, wholeStage ? undefined : fns.length);
        return true;
      }
      // Failed: retry (the slot is free meanwhile), or a final failure.
      value = input;
      const delay = this.#retryDelay(t, workerId, slot, error);
      if (this.adaptive !== undefined) {
        this.#adapt(began, typeof delay === "number" || isOverload(error));
        if (run.state !== RUNNING) { // a "concurrency" listener stopped it
          this.#release(workerId);
          return false;
        }
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

  /**
   * Feeds the adaptive limit one finished attempt (begun at `began`) and
   * applies a new limit.
   */
  #adapt(began: number, overloaded: boolean): void {
    const limit = this.adaptive!;
    const ms = performance.now() - began;
    if (limit.sample(ms, overloaded, this.running - 1)) {
      this.setConcurrency(limit.limit, "adaptive");
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
    const ctx = this.#ctx(t, workerId, signal);
    const delay = retryDelay(retry, t.attempt, error, ctx);
    if (typeof delay !== "number") return delay;
    this.retried++;
    const stats = this.#stats;
    if (stats.listening & RETRYING) {
      stats.emit(
        "retrying",
        this.name,
        t,
        workerId,
        error,
        this.#elapsed(workerId),
        this.#task(t),
      );
    }
    return delay;
  }

  /** Waits out a backoff holding no slot, then `t` re-enters the stage first. */
  #backoff(t: Token, delay: number): void {
    if (this.#run.state !== RUNNING) return; // a "retrying" listener stopped it
    this.backingOff++;
    const timer = setTimeout(() => {
      this.#backoffTimers.delete(timer);
      this.backingOff--;
      if (this.#run.state !== RUNNING) return;
      if (this.running < this.concurrency) this.start(t);
      else this.queue.unshift(t); // a retrying item keeps its place
    }, delay);
    this.#backoffTimers.add(timer);
  }

  /** Counts a final failure and fires `"failed"`. */
  #failed(t: Token, workerId: number, error: unknown): void {
    this.failed++;
    const stats = this.#stats;
    stats.failedWeight += t.weight;
    if (stats.listening & FAILED) {
      stats.emit(
        "failed",
        this.name,
        t,
        workerId,
        error,
        this.#elapsed(workerId),
        this.#task(t, true),
      );
    }
  }

  /** Applies `onError` to an item that failed for good. */
  async #finalFailure(
    t: Token,
    workerId: number,
    error: unknown,
  ): Promise<boolean> {
    const run = this.#run;
    this.#failed(t, workerId, error);
    t.step = 0;
    t.partial = undefined;
    if (run.state !== RUNNING) { // a "failed" listener stopped the run
      this.#release(workerId);
      return false;
    }
    const onError = this.#onError;
    let decision: ErrorDecision | unknown = onError;
    let cause = error;
    if (typeof onError === "function") {
      const ctx = this.#ctx(t, workerId, this.#signals.get(workerId));
      try {
        decision = await onError(error, t.value, ctx);
      } catch (thrown) {
        decision = "fail";
        cause = thrown;
      }
      if (run.state !== RUNNING) {
        this.#release(workerId);
        return false;
      }
    }
    if (decision === "skip") {
      this.skipped++;
      this.#slotToken[workerId] = null;
      run.config.failures.push({
        itemId: t.id,
        index: t.index,
        stage: this.name,
        item: t.value,
        error,
        attempts: t.attempt,
      });
      // Counted skipped before "skipped" fires: a listener that stops the run
      // finds it out of the run, not among the cancelled.
      const next = this.#keys?.release(t);
      run.drop(t, true);
      if (this.#stats.listening & SKIPPED) {
        this.#stats.emit("skipped", this.name, t, workerId, error);
      }
      t.attempt = 0;
      if (next !== undefined) this.#nextOfKey(next);
      return true;
    }
    if (
      typeof decision === "object" && decision !== null && "value" in decision
    ) {
      this.#slotToken[workerId] = null;
      this.#pass(t, decision.value); // not a "completed" call
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
    run.fault(this.name, t, cause);
    this.#release(workerId);
    this.#reuseSlot();
    return false;
  }

  // ---- timing and stats ----------------------------------------------------

  #timeStart(times: Times, workerId: number): void {
    const now = performance.now();
    this.#slotSince[workerId] = now;
    this.#queueWait.record(times.enteredAt > 0 ? now - times.enteredAt : 0);
    times.enteredAt = 0;
  }

  #timeEnd(workerId: number): void {
    const ms = performance.now() - this.#slotSince[workerId];
    this.#latency.record(ms);
    this.recentMs += (ms - this.recentMs) / 8;
    // Sampled calls are rare: each one may switch timing all on at once.
    const stats = this.#stats;
    if (!stats.timeAll || (++this.#timedCalls & 15) === 0) {
      stats.updateTimeAll();
    }
  }

  snapshot(elapsedMs: number): StageStats {
    const workers: WorkerState[] = [];
    for (let id = 0; id < this.#nextId; id++) {
      const t = this.#slotToken[id];
      const since = this.#slotSince[id];
      workers.push(
        t
          ? {
            workerId: id,
            state: "busy",
            itemId: t.id,
            index: t.index,
            since: Number.isFinite(since)
              ? performance.timeOrigin + since
              : undefined,
          }
          : { workerId: id, state: "idle" },
      );
    }
    const inFlight = this.running - (this.#limiter?.waiting ?? 0);
    return {
      name: this.name,
      kind: this.kind,
      concurrency: this.concurrency,
      queued: this.queue.size + (this.#keys?.waiting ?? 0),
      inFlight,
      busy: this.running,
      backingOff: this.backingOff,
      completed: this.completed,
      failed: this.failed,
      skipped: this.skipped,
      retried: this.retried,
      latency: this.#latency.snapshot(),
      queueWait: this.#queueWait.snapshot(),
      throughput: elapsedMs > 0 ? this.completed / (elapsedMs / 1000) : 0,
      workers,
      ...(this.adaptive && { adaptive: adaptiveStats(this.adaptive) }),
    };
  }
}
