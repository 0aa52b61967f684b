import { BatchStage } from "./_batch_stage.ts";
import { DirectOutput } from "./_direct_output.ts";
import { Fifo } from "./_fifo.ts";
import { FlattenStage } from "./_flatten_stage.ts";
import { OrderList } from "./_order_list.ts";
import {
  DONE,
  type NamedSpec,
  readAheadLimit,
  type RunConfig,
  type RunHost,
  RUNNING,
  STOPPING,
} from "./_run.ts";
import { type OnCollected, RunOutcome } from "./_run_outcome.ts";
import { CONCURRENCY, QUEUED, RunStats } from "./_run_stats.ts";
import { closeSource, openSource, type SourceReader } from "./_source.ts";
import { sampled, Spares, Token, UNIT } from "./_token.ts";
import { Tracker } from "./_tracker.ts";
import { WorkStage } from "./_work_stage.ts";
import { PipelineError } from "./errors.ts";
import type { FlowStats } from "./stats.ts";
import type { Source } from "./types.ts";

export type { NamedSpec, RunConfig } from "./_run.ts";

type Stage = WorkStage | BatchStage | FlattenStage;

/**
 * Runs one flow: keeps the lifecycle, reads the source while the read-ahead
 * budget allows, moves tokens between the stages (parts of their own:
 * `_work_stage.ts`, `_batch_stage.ts`, `_flatten_stage.ts`) and hands results
 * to the consumer (input or completion order). ARCHITECTURE.md explains the
 * model; the invariants are written next to their fields.
 */
export class Scheduler implements RunHost {
  state = RUNNING;
  readonly config: RunConfig;
  readonly stats: RunStats;
  /**
   * Input order: every live token, oldest first (the next result at its
   * head). Null in completion order, and for a run whose results are placed
   * directly (`#direct`).
   */
  order: OrderList | null;
  readonly #stages: Stage[];
  readonly #n: number;
  readonly #source: Source<unknown>;
  #reader: SourceReader<unknown> | null = null;
  #started = false;

  // Budget: `held` (source items read and not yet out) never exceeds `limit`
  // (once a concurrency is lowered: no more is read until it holds again).
  #limit: number;
  /**
   * Hysteresis: once the budget is spent (`#full`), the source is read again
   * only when `#refill` items have left, so refills come in bursts that keep
   * the workers looping instead of one task started per result taken (a
   * consumer-paced run). `#refill` never exceeds `bufferSize`: what is held
   * beyond it can always leave without new input (forming batches aside,
   * which the budget counts separately), so the run cannot stall.
   */
  readonly #refill: number;
  #full = false;
  #held = 0;
  #sourceDone = false;
  #pulling = false;

  /** Tokens alive per stage; index n counts results not yet taken. */
  readonly #atStage: number[];
  #live = 0;
  /** Stage calls in flight; the run settles only once this is 0. */
  #running = 0;

  readonly #batchStages: BatchStage[] = [];
  /** The first stage, when it is a batch (see #admit); pays in W4. */
  readonly #firstBatch: BatchStage | null;
  /**
   * The first stage, when it is a plain map or filter and the source answers
   * synchronously: its workers read their next item themselves (`nextItem`),
   * so the pump only starts idle workers and no item waits in its queue
   * (W1, bench/compare).
   */
  #firstWork: WorkStage | null = null;
  // Completion order: results not yet taken.
  readonly #ready = new Fifo<Token>();

  /** Waiting `next()` calls, `collect()`'s callback, `settled()`. */
  readonly #outcome = new RunOutcome();
  #collector: unknown[] | null = null;
  /** `collect()` of a run through maps only: results placed directly. */
  #direct: DirectOutput | null = null;
  readonly #spares = new Spares();

  constructor(
    specs: readonly NamedSpec[],
    source: Source<unknown>,
    config: RunConfig,
  ) {
    this.config = config;
    this.#source = source;
    // The stats first: the stages read them (filled in below).
    const stages: Stage[] = [];
    const track = config.track;
    this.stats = new RunStats(
      config.target,
      stages,
      config.progressIntervalMs,
      () => this.snapshot(),
      track === undefined ? null : new Tracker(track.history, track.keep),
    );
    specs.forEach(({ spec, name }, at) => {
      if (spec.kind === "batch") {
        const track = specs.some((x, i) => i > at && x.spec.kind === "flatten");
        const st = new BatchStage(this, name, at, spec, track);
        this.#batchStages.push(st);
        stages.push(st);
      } else if (spec.kind === "flatten") {
        stages.push(new FlattenStage(this, name, at));
      } else stages.push(new WorkStage(this, name, spec));
    });
    this.#stages = stages;
    this.#n = specs.length;
    this.order = config.ordered ? new OrderList(this.#batchStages) : null;
    this.#limit = readAheadLimit(stages, config.bufferSize) * UNIT;
    this.#refill =
      (config.bufferSize >= 512 ? Math.floor(config.bufferSize / 16) : 1) *
      UNIT;
    this.#atStage = new Array(this.#n + 1).fill(0);
    const first = this.#stages[0];
    // Tracked items all have tokens (a batch absorbs them one by one).
    this.#firstBatch = first?.kind === "batch" && track === undefined
      ? first
      : null;
    // Lazy: nothing runs before the caller's synchronous code has finished.
    queueMicrotask(() => this.#start());
  }

  // ---- lifecycle ---------------------------------------------------------

  #start(): void {
    if (this.state !== RUNNING) return;
    this.#started = true;
    const signal = this.config.signal;
    if (signal) {
      if (signal.aborted) return this.stop(signal.reason);
      signal.addEventListener("abort", this.#onSignal, { once: true });
    }
    try {
      this.#reader = openSource(this.#source);
    } catch (error) {
      return this.stop(error);
    }
    const first = this.#stages[0];
    if (this.#reader.sync && first instanceof WorkStage && first.plain) {
      this.#firstWork = first;
      first.readsSource = true;
    }
    this.pump();
  }

  #onSignal = (): void => {
    this.stop(this.config.signal!.reason);
  };

  /**
   * Cancels the run: stops reading, aborts every in-flight `ctx.signal`,
   * clears timers, and settles once every in-flight call has returned.
   * `quiet` (the consumer left) settles without an error.
   */
  stop(reason: unknown, quiet = false): void {
    if (this.state !== RUNNING) return;
    this.state = STOPPING;
    this.#outcome.reason = reason;
    this.#outcome.quiet = quiet;
    for (const st of this.#stages) st.stop(reason);
    // Results not taken yet are dropped with the rest: a stopped run delivers
    // nothing more. `collect()` rejects, so what it gathered is cancelled too.
    const stats = this.stats;
    stats.cancelledWeight += this.#held;
    this.#held = 0;
    stats.tracker?.stopped();
    if (this.#collector !== null) {
      stats.cancelledWeight += stats.outWeight;
      stats.outWeight = 0;
      stats.results = 0;
    }
    this.#endInput(reason);
    this.#maybeSettle();
  }

  /** Reads no more: a source not read to its end is closed. */
  #endInput(reason: unknown): void {
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    closeSource(this.#reader, this.#source, reason);
  }

  /** `t` failed for good and no `onError` rescued it: the run fails. */
  fault(stage: string, t: Token, cause: unknown): void {
    const error = new PipelineError(stage, t.id, t.index, t.value, cause);
    if (!this.config.failAtTurn || this.order === null) return this.stop(error);
    // At its turn: reading stops, earlier items go on to be delivered, and
    // the run stops when the consumer reaches `t`.
    t.failed = true;
    t.value = error;
    this.#endInput(error);
    this.#atStage[t.stage]--;
    this.#enter(t, this.#n);
    this.#checkEnd(); // batches waiting for more input flush now
  }

  callStarted(): void {
    this.#running++;
  }

  callEnded(): void {
    this.#running--;
    if (this.state !== RUNNING) this.#maybeSettle();
  }

  concurrencyChanged(
    stage: string,
    from: number,
    to: number,
    reason: string,
  ): void {
    this.#limit = readAheadLimit(this.#stages, this.config.bufferSize) * UNIT;
    if (this.stats.listening & CONCURRENCY) {
      this.stats.concurrency(stage, from, to, reason);
    }
  }

  /**
   * `flow.setConcurrency()` (validated there): stage `at` gets `n` slots;
   * `bufferSize` (`Pool.map`) changes the run's own budget with it.
   */
  setConcurrency(at: number, n: number, bufferSize?: number): void {
    if (bufferSize !== undefined) this.config.bufferSize = bufferSize;
    (this.#stages[at] as WorkStage).setConcurrency(n, "set");
  }

  #maybeSettle(): void {
    if (this.state === STOPPING && this.#running === 0) this.#finish();
  }

  #finish(): void {
    const failed = this.state === STOPPING;
    this.state = DONE;
    this.stats.end();
    this.config.signal?.removeEventListener("abort", this.#onSignal);
    this.#outcome.settle(
      failed,
      () => this.#direct?.close(this.stats.results),
    );
  }

  // ---- consumers ---------------------------------------------------------

  /** The async-iterator `next()`. */
  next(): Promise<IteratorResult<unknown>> {
    const t = this.#take();
    if (t !== null) {
      // Pump only when taking it freed budget the source was waiting for,
      // or when it was the last token (the run may end).
      if (
        this.#live === 0 ||
        (this.#full && this.#held <= this.#limit - this.#refill)
      ) {
        this.pump();
      }
      const value = t.value;
      this.#spares.put(t);
      return Promise.resolve({ done: false, value });
    }
    return this.#outcome.wait();
  }

  /**
   * Takes every result into `into`; `onCollected(failed, reason)` runs once
   * the run has settled.
   */
  collect(into: unknown[], onCollected: OnCollected): void {
    this.#collector = into;
    // Nothing read yet, and every stage gives one result per item: each
    // result's place in `into` is known when it is done.
    if (
      this.stats.itemsIn === 0 && this.state === RUNNING &&
      this.#stages.every((st) => st.kind === "map")
    ) {
      // An array's length is the output's (skips aside): reserve it.
      const source = this.#source;
      const length = Array.isArray(source) ? source.length : undefined;
      this.#direct = new DirectOutput(into, this.config.ordered, length);
      this.order = null;
      const last = this.#stages[this.#n - 1];
      if (last instanceof WorkStage && last.plain && this.tracker === null) {
        last.placesResults = true;
      }
    }
    this.#outcome.onCollected(onCollected); // at once if the run has settled
    if (this.state === DONE) return;
    this.#deliver();
    this.pump();
  }

  /** Resolves once the run has settled (after a stop: every call returned). */
  settled(): Promise<void> {
    return this.#outcome.whenSettled();
  }

  #take(): Token | null {
    if (this.state !== RUNNING) return null; // a stopped run delivers nothing
    let t: Token | null;
    const order = this.order;
    if (order !== null) {
      t = order.head;
      if (t === null || t.stage !== this.#n) return null;
      if (t.failed) {
        this.stop(t.value);
        return null;
      }
      order.unlink(t);
    } else {
      t = this.#ready.shift() ?? null;
      if (t === null) return null;
    }
    this.#atStage[this.#n]--;
    this.#out(t);
    return t;
  }

  /** `t` leaves the run as a result. */
  #out(t: Token): void {
    this.#live--;
    this.#held -= t.weight;
    const stats = this.stats;
    stats.outWeight += t.weight;
    stats.results++;
    if (t.times !== null) stats.recordLatency(t.times.bornAt);
  }

  #deliver(): void {
    const collector = this.#collector;
    if (collector !== null) {
      for (let t = this.#take(); t !== null; t = this.#take()) {
        collector.push(t.value);
        this.#spares.put(t);
      }
      return;
    }
    const outcome = this.#outcome;
    while (outcome.waiting) {
      const t = this.#take();
      if (t === null) return;
      outcome.resolveNext(t.value);
      this.#spares.put(t);
    }
  }

  // ---- the pump: read the source while the budget allows -----------------

  pump(): void {
    if (this.state !== RUNNING || !this.#started) return;
    if (this.#full) {
      if (this.#held > this.#limit - this.#refill) {
        return this.#checkEnd();
      }
      this.#full = false;
    }
    const first = this.#stages[0];
    const work = first instanceof WorkStage ? first : null;
    const readsSource = this.#firstWork !== null;
    const batch = this.#firstBatch;
    while (
      !this.#sourceDone && !this.#pulling &&
      this.#held <= this.#limit - UNIT &&
      // Nothing waits for a worker of the first stage; with a synchronous
      // source, a worker is free (busy ones read their next item themselves).
      (work === null ||
        work.queue.size === 0 &&
          (!readsSource || work.running < work.concurrency))
    ) {
      // A batch as the first stage, fed from an array: a run of items goes
      // straight into the forming batch (see #admit).
      if (batch !== null) {
        const room = Math.floor((this.#limit - this.#held) / UNIT);
        const k = batch.fillFrom(this.#reader!, room);
        if (k > 0) {
          this.#held += k * UNIT;
          batch.flushIfReady();
          if (this.state !== RUNNING) return;
          continue;
        }
      }
      const r = this.#pull();
      if (r === null) return;
      if (r.done) this.#sourceDone = true;
      else this.#admit(r.value);
      if (this.state !== RUNNING) return;
    }
    if (this.#held > this.#limit - UNIT) this.#full = true;
    this.#checkEnd();
  }

  /**
   * Reads the source once. Null when there is nothing now: the source threw
   * (the run stops) or answers later (then #onPulled admits the item).
   */
  #pull(): IteratorResult<unknown> | null {
    let r;
    try {
      r = this.#reader!.pull();
    } catch (error) {
      this.#inputFailed(error);
      return null;
    }
    if (r instanceof Promise) {
      this.#pulling = true;
      r.then(this.#onPulled, this.#onPullError);
      return null;
    }
    return r;
  }

  #onPulled = (r: IteratorResult<unknown>): void => {
    this.#pulling = false;
    if (this.state !== RUNNING) {
      // Read after the stop (perhaps after the run settled): still counted.
      if (!r.done) this.#admit(r.value);
      return;
    }
    if (r.done) this.#sourceDone = true;
    else this.#admit(r.value);
    this.pump();
  };

  #onPullError = (error: unknown): void => {
    this.#pulling = false;
    this.#inputFailed(error);
  };

  /**
   * The source threw: it is finished, and the run fails (with failAtTurn in
   * input order: once every item read before the error is delivered).
   */
  #inputFailed(error: unknown): void {
    this.#sourceDone = true;
    const order = this.order;
    if (!this.config.failAtTurn || order === null) return this.stop(error);
    // A result of no weight after the last item read: the error at its turn.
    const index = this.stats.itemsIn;
    const t = new Token(error, index, index, 0);
    t.failed = true;
    t.stage = this.#n;
    this.#atStage[this.#n]++;
    this.#live++;
    order.append(t);
    if (t === order.head) this.#deliver();
    this.#checkEnd();
  }

  #admit(value: unknown): void {
    const index = this.stats.itemsIn++;
    const id = this.state === RUNNING ? this.#idOf(value, index) : undefined;
    if (this.state !== RUNNING) {
      // The run stopped while this item was read (or id() threw): it is in.
      this.stats.cancelledWeight += UNIT;
      return;
    }
    // A batch as the first stage takes items straight from the source, in
    // source order: a member of a forming batch needs no token of its own
    // (its weight goes to the batch's first token, which is in the run).
    const first = this.#firstBatch;
    if (first !== null && first.carrier !== null) {
      this.#held += UNIT;
      return first.admit(value, index, id);
    }
    this.#enter(this.#token(value, index, id), 0);
  }

  /** The item's id: `run(source, { id })`'s, or its index. Stops if it throws. */
  #idOf(value: unknown, index: number): unknown {
    const id = this.config.id;
    if (id === undefined) return index;
    try {
      return id(value, index);
    } catch (error) {
      this.stop(error);
      return undefined;
    }
  }

  /**
   * A token for a source item (`spare`, if given), counted in the run (not
   * yet in a stage).
   */
  #token(value: unknown, index: number, id: unknown, spare?: Token): Token {
    const t = this.#spares.take(value, index, id, spare);
    if (this.stats.timeAll || sampled(index)) {
      t.times = { bornAt: performance.now(), enteredAt: 0 };
    }
    this.#held += UNIT;
    this.#live++;
    this.order?.append(t);
    return t;
  }

  /**
   * A worker of the first stage (`#firstWork`) found its queue empty: its
   * next item, read straight from the synchronous source if the budget
   * allows (skipping the pump and the queue). #pull and #idOf are repeated
   * inline: calls made W1 bimodal on Deno (bench/README.md).
   */
  nextItem(spare?: Token): Token | undefined {
    if (
      this.#full || this.#sourceDone ||
      this.#held > this.#limit - UNIT
    ) {
      return this.#noItem(spare);
    }
    let r;
    try {
      // A synchronous reader (see #start): never a promise.
      r = this.#reader!.pull() as IteratorResult<unknown>;
    } catch (error) {
      this.#inputFailed(error);
      return this.#noItem(spare);
    }
    if (r.done) {
      this.#sourceDone = true;
      return this.#noItem(spare);
    }
    const index = this.stats.itemsIn++;
    let id: unknown = index;
    if (this.state === RUNNING && this.config.id !== undefined) {
      try {
        id = this.config.id(r.value, index);
      } catch (error) {
        this.stop(error);
      }
    }
    if (this.state !== RUNNING) {
      // The run stopped while this item was read (or id() threw): it is in.
      this.stats.cancelledWeight += UNIT;
      return this.#noItem(spare);
    }
    const t = this.#token(r.value, index, id, spare);
    this.#atStage[0]++;
    if (this.stats.listening & QUEUED) {
      this.stats.queued(this.#stages[0].name, id, index);
      if (this.state !== RUNNING) return undefined; // a listener stopped it
    }
    return t;
  }

  /** `nextItem` read nothing: the spare token it was given is kept. */
  #noItem(spare: Token | undefined): undefined {
    if (spare !== undefined) this.#spares.put(spare);
    return undefined;
  }

  place(t: Token, value: unknown, next: boolean): boolean {
    this.#atStage[t.stage]--;
    t.attempt = 0; // as a result's token (see Spares.take)
    this.#placeOut(t, value);
    if (next) return this.nextItem(t) !== undefined;
    this.#spares.put(t);
    return false;
  }

  /** `t` is placed in `collect()`'s output, and out of the run. */
  #placeOut(t: Token, value: unknown): void {
    this.#direct!.place(value, t.index, this.stats.results);
    this.#out(t);
  }

  /** Checks the end of input: final batch flushes, then the end of the run. */
  #checkEnd(): void {
    if (!this.#sourceDone || this.#pulling || this.state !== RUNNING) return;
    let upstream = 0;
    for (let s = 0; s < this.#n; s++) {
      const st = this.#stages[s];
      // Nothing can reach this batch any more: emit the remainder.
      if (st.kind === "batch" && upstream === 0 && st.carrier !== null) {
        st.flush();
      }
      upstream += this.#atStage[s];
    }
    if (this.#live === 0) this.#finish();
  }

  // ---- moving tokens -----------------------------------------------------

  /** Puts `t` into stage `s` (or makes it a result when `s === n`). */
  #enter(t: Token, s: number): void {
    t.stage = s;
    if (s < this.#n) {
      this.#atStage[s]++;
      const st = this.#stages[s];
      if (this.stats.listening & QUEUED) {
        this.stats.queued(st.name, t.id, t.index);
        if (this.state !== RUNNING) return; // a listener stopped the run
      }
      return st.enter(t);
    }
    const tracker = this.stats.tracker;
    if (tracker !== null && !t.failed && s > 0) {
      tracker.done(t.id, this.#stages[s - 1].name);
    }
    if (this.#direct !== null) {
      this.#placeOut(t, t.value);
      return this.#spares.put(t);
    }
    this.#atStage[s]++;
    if (this.order !== null) {
      if (t === this.order.head) this.#deliver();
    } else {
      this.#ready.push(t);
      this.#deliver();
    }
  }

  forward(t: Token): void {
    this.#atStage[t.stage]--;
    this.#enter(t, t.stage + 1);
  }

  drop(t: Token, skipped = false): void {
    this.#atStage[t.stage]--;
    this.#live--;
    this.#held -= t.weight;
    if (skipped) this.stats.skippedWeight += t.weight;
    else {
      this.stats.filteredWeight += t.weight;
      this.stats.tracker?.filtered(t.id, this.#stages[t.stage].name);
    }
    this.#direct?.skip(t.index);
    const order = this.order;
    if (order !== null) {
      const wasHead = t === order.head;
      order.unlink(t);
      if (wasHead) this.#deliver();
      // A batch whose cursor moved on may now take waiting tokens.
      for (const st of this.#batchStages) {
        if (this.state !== RUNNING) break;
        st.feed();
      }
    }
  }

  absorb(t: Token, carrier: Token): void {
    this.stats.tracker?.absorbed(t.id, carrier.id);
    this.#atStage[t.stage]--;
    this.#live--;
    this.order?.unlink(t);
  }

  grow(s: number, k: number): void {
    this.#atStage[s] += k;
    this.#live += k;
  }

  // ---- events and stats --------------------------------------------------

  /** Someone listens to the flow's events (from now on they are dispatched). */
  listen(type: string): void {
    this.stats.listen(type, this.state === RUNNING);
  }

  /** Item tracking, if the run has it. */
  get tracker(): Tracker | null {
    return this.stats.tracker;
  }

  /** The run's stats now. */
  snapshot(): FlowStats {
    return this.stats.snapshot(this.#held, this.state === DONE);
  }
}
