/**
 * A map or filter stage at run time: `concurrency` worker slots, a FIFO queue
 * of tokens waiting for one, and the worker loops. ARCHITECTURE.md ("Work
 * stages") lists the invariants.
 *
 * @module
 */

import { AdaptiveLimit } from "./_adaptive_limit.ts";
import { SlotSignals } from "./_attempt.ts";
import { Fifo } from "./_fifo.ts";
import { KeyOrder } from "./_key_order.ts";
import { Histogram } from "./_histogram.ts";
import { type RunHost, RUNNING } from "./_run.ts";
import {
  adaptiveStats,
  COMPLETED,
  FAILED,
  NO_ERROR,
  type RunStats,
  SKIPPED,
  type StagePart,
  STARTED,
  TIMED_EVENTS,
} from "./_run_stats.ts";
import { type AttemptHost, StageAttempts } from "./_stage_attempts.ts";
import type { Times, Token } from "./_token.ts";
import type { MapSpec, TaskFn } from "./stage.ts";
import type { StageStats, WorkerState } from "./stats.ts";
import type { TaskContext } from "./types.ts";

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
export class WorkStage implements StagePart, AttemptHost {
  readonly kind: "map" | "filter";
  readonly name: string;
  readonly #run: RunHost;
  /** `run.stats`, read on every call. */
  readonly #stats: RunStats;
  readonly #fns: readonly TaskFn[];
  /** `run(src, { context })`, passed to every call as `ctx.context`. */
  readonly #context: unknown;
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
  /** The slow path (`_stage_attempts.ts`), unless the stage is plain. */
  readonly #slow: StageAttempts | undefined;
  /** Retries run one function at a time (retry scope "task"). */
  readonly #taskScoped: boolean;
  /** Per-key order (`key` option), if any. */
  readonly #keys: KeyOrder | undefined;
  /**
   * Its workers read their next item from the source themselves (`nextItem`):
   * the first stage, plain, of a run whose source answers synchronously.
   */
  readsSource = false;
  /**
   * Its results are placed straight into `collect()`'s output (the last
   * stage, plain, of a run placing results directly, untracked): a placed
   * result's token then carries the worker's next item (W1 `collect()`).
   */
  placesResults = false;

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
  /**
   * Per worker slot: its token (null when idle) and its call's start time
   * (NaN unless the call is timed or watched: cleared when such a call ends
   * and when the slot is released, so an untimed call writes nothing).
   */
  readonly #slotToken: (Token | null)[] = [];
  readonly #slotSince: number[] = [];

  // Stats.
  completed = 0;
  failed = 0;
  skipped = 0;
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
    this.#context = run.config.context;
    this.concurrency = spec.concurrency;
    const { retry, timeoutMs, onError, rateLimit, adaptive, key } = spec;
    this.adaptive = adaptive && new AdaptiveLimit(adaptive);
    this.#keys = key && new KeyOrder(key);
    this.plain = !retry && timeoutMs === undefined && !rateLimit &&
      onError === "fail" && !adaptive && !key;
    this.#slow = this.plain ? undefined : new StageAttempts(run, this, spec);
    this.#taskScoped = retry !== undefined && retry.scope === "task";
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
    if (this.#slow !== undefined) {
      this.#slow.worker(t, workerId);
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
    this.#slow?.stop(reason);
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
      context: this.#context,
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
    return failed || this.#taskScoped ? taskName(fns, t.step) : undefined;
  }

  /** How long the call on slot `workerId` has run (NaN if not timed). */
  #elapsed(workerId: number): number {
    return performance.now() - this.#slotSince[workerId];
  }

  /** A call on `t` succeeded: its result moves on (or is filtered out). */
  #handOn(t: Token, workerId: number, value: unknown, tasks = 0): void {
    this.completed++;
    this.#slotToken[workerId] = null;
    // Out of line, as in #begin: timing and "completed".
    if (t.times !== null || this.#stats.listening !== 0) {
      if (!this.#timeAndReport(t, workerId, tasks)) return;
    }
    this.#pass(t, value);
  }

  /**
   * A timed or watched call ended: its timing, `"completed"`, and the slot's
   * start time cleared. False when a listener stopped the run.
   */
  #timeAndReport(t: Token, workerId: number, tasks: number): boolean {
    if (t.times !== null) this.#timeEnd(workerId);
    if (this.#stats.listening & COMPLETED) {
      this.#reportCompleted(t, workerId, tasks);
    }
    this.#slotSince[workerId] = NaN;
    return this.#run.state === RUNNING;
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
      if (
        this.placesResults && t.times === null && this.#stats.listening === 0
      ) {
        // Placed directly (untimed, unwatched): in the steady state, `t`
        // carries the next item.
        this.completed++;
        this.#slotToken[workerId] = null;
        const steady = this.readsSource && this.queue.size === 0 &&
          this.running === this.concurrency;
        if (run.place(t, value, steady)) continue;
        if (steady) { // nothing to read now
          this.#release(workerId);
          return run.pump();
        }
      } else {
        this.#handOn(t, workerId, value);
        if (run.state !== RUNNING) return this.#release(workerId);
      }
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

  /** Frees a worker slot; once the run stops, the last one settles it. */
  #release(workerId: number): void {
    this.running--;
    this.#freeIds.push(workerId);
    this.#slotToken[workerId] = null;
    this.#slotSince[workerId] = NaN;
    this.#run.callEnded();
  }

  /** After a failure at its turn, a freed slot takes the next queued token. */
  #reuseSlot(): void {
    if (this.#run.state !== RUNNING || this.running >= this.concurrency) return;
    const next = this.queue.shift();
    if (next !== undefined) this.start(next);
  }

  // ---- what the slow path (_stage_attempts.ts) asks of the stage ----------

  get tasks(): number {
    return this.#fns.length;
  }

  slotSignal(workerId: number): AbortSignal {
    return this.#signals.get(workerId);
  }

  occupy(workerId: number, t: Token): void {
    this.#slotToken[workerId] = t;
    this.#slotSince[workerId] = NaN; // until the call starts (rate limit)
  }

  beginCall(t: Token, workerId: number): boolean {
    return this.#begin(t, workerId);
  }

  call(
    t: Token,
    workerId: number,
    value: unknown,
    signal: AbortSignal,
    step: number,
  ): unknown {
    return this.#call(t, workerId, value, signal, step);
  }

  ctx(t: Token, workerId: number, signal: AbortSignal): TaskContext {
    return this.#ctx(t, workerId, signal);
  }

  handOn(t: Token, workerId: number, value: unknown, tasks: number): void {
    this.#handOn(t, workerId, value, tasks);
  }

  substitute(t: Token, workerId: number, value: unknown): void {
    this.#slotToken[workerId] = null;
    this.#pass(t, value);
  }

  failedForGood(t: Token, workerId: number, error: unknown): void {
    this.#failed(t, workerId, error);
  }

  skip(t: Token, workerId: number, error: unknown): void {
    const run = this.#run;
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
  }

  retrying(t: Token, workerId: number, error: unknown): void {
    this.#stats.emit(
      "retrying",
      this.name,
      t,
      workerId,
      error,
      this.#elapsed(workerId),
      this.#task(t),
    );
  }

  release(workerId: number): void {
    this.#release(workerId);
  }

  reuseSlot(): void {
    this.#reuseSlot();
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
    const slow = this.#slow;
    const inFlight = this.running - (slow?.waiting ?? 0);
    return {
      name: this.name,
      kind: this.kind,
      concurrency: this.concurrency,
      queued: this.queue.size + (this.#keys?.waiting ?? 0),
      inFlight,
      busy: this.running,
      backingOff: slow?.backingOff ?? 0,
      completed: this.completed,
      failed: this.failed,
      skipped: this.skipped,
      retried: slow?.retried ?? 0,
      latency: this.#latency.snapshot(),
      queueWait: this.#queueWait.snapshot(),
      throughput: elapsedMs > 0 ? this.completed / (elapsedMs / 1000) : 0,
      workers,
      ...(this.adaptive && { adaptive: adaptiveStats(this.adaptive) }),
    };
  }
}
