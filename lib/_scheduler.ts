// The scheduler: one run of a pipeline. ARCHITECTURE.md explains the model;
// the invariants it keeps are written next to the fields that hold them.
import { Deadline, retryDelay, SlotSignals } from "./_attempt.ts";
import { PipelineError } from "./errors.ts";
import type {
  FailureRecord,
  FlowStats,
  StageStats,
  WorkerState,
} from "./stats.ts";
import type { ErrorDecision, OnError } from "./types.ts";
import type { RetryPolicy } from "./retry.ts";
import type { StageSpec, TaskFn } from "./stage.ts";
import { Fifo } from "./_fifo.ts";
import { Histogram } from "./_histogram.ts";
import { RateLimiter } from "./_rate_limiter.ts";
import { openSource, type SourceReader } from "./_source.ts";
import type { Source, TaskContext } from "./types.ts";

/** Options of one run, already validated by `Pipeline.run()`. */
export interface RunConfig {
  ordered: boolean;
  signal: AbortSignal | undefined;
  id: ((item: unknown, index: number) => unknown) | undefined;
  bufferSize: number;
  context: unknown;
  /** Where events are dispatched (the Flow). */
  target: EventTarget;
  /** Where `onError: "skip"` records go (the Flow's `failures`). */
  failures: FailureRecord[];
  progressIntervalMs: number;
  /**
   * Input order: a failure that stops the run waits for its turn, so every
   * result before it is delivered first (`Pool.map`). Reading stops at once.
   */
  failAtTurn?: boolean;
}

/** A stage of a pipeline with its resolved name. */
export interface NamedSpec {
  spec: StageSpec;
  name: string;
}

/**
 * One unit of work in flight: a source item, a batch, or an element of a
 * flattened item. Kept as it moves on from stage to stage; once it has left
 * the run as a result, it may carry a later source item (`#recycle`).
 */
class Token {
  value: unknown;
  /** Input position of the item (of the first item, for a batch). */
  index: number;
  id: unknown;
  /** The stage that holds it; `stages.length` once it is a result. */
  stage = 0;
  /**
   * How many source items this token stands for, in `UNIT`s: one for a source
   * item, the sum of its members for a batch, a share of its parent (in whole
   * units) for an element of a flattened item. Returned to the read-ahead
   * budget when it leaves.
   */
  weight: number;
  // Links of the order list (input order only).
  prev: Token | null = null;
  next: Token | null = null;
  /**
   * Its times, when they are measured (one token in 128, or all while calls
   * are slow). A separate object: double fields on every token would box.
   */
  times: Times | null = null;
  // Progress within a stage with retries: the function of a multi-task stage
  // to run next, its input, and the attempt number.
  step = 0;
  partial: unknown = undefined;
  attempt = 0;
  /**
   * A batch on its way to a flatten: its members' tokens (the first is the
   * carrier itself, or a stand-in keeping the carrier's own members), which
   * the flatten's elements reuse with their own index, id and times.
   */
  members: Token[] | null = null;
  /** A result that is the run's error, delivered at its turn (failAtTurn). */
  failed = false;

  constructor(value: unknown, index: number, id: unknown, weight: number) {
    this.value = value;
    this.index = index;
    this.id = id;
    this.weight = weight;
  }
}

interface Times {
  /** performance.now() when read from the source. */
  readonly bornAt: number;
  /** performance.now() when queued at its current stage (0: not queued). */
  enteredAt: number;
}

interface Counters {
  completed: number;
  failed: number;
  skipped: number;
  retried: number;
  backingOff: number;
}

interface WorkStage extends Counters {
  readonly kind: "map" | "filter";
  readonly name: string;
  readonly fns: readonly TaskFn[];
  readonly concurrency: number;
  /** No retry, timeout, rate limit or error policy: the fast path. */
  readonly plain: boolean;
  readonly retry: RetryPolicy | undefined;
  readonly timeoutMs: number | undefined;
  readonly onError: OnError;
  readonly limiter: RateLimiter | undefined;
  readonly latency: Histogram;
  readonly queueWait: Histogram;
  /** Moving average of timed calls (ms), to decide whether to time them all. */
  recentMs: number;
  timedCalls: number;
  /** Per worker slot: its token (null when idle) and start time. */
  readonly slotToken: (Token | null)[];
  readonly slotSince: number[];
  /** Invariant: running <= concurrency. */
  running: number;
  /** Tokens waiting for a worker; only non-empty while running === concurrency. */
  queue: Fifo<Token>;
  /** Worker ids free for reuse; ids in use are distinct and < concurrency. */
  freeIds: number[];
  nextId: number;
  /**
   * One `ctx.signal` per worker slot (made when the slot id is first taken),
   * all aborted when the run stops: a signal has one call's listeners at
   * most. `slotSignal` is `signals.signals`, read once per worker start.
   */
  readonly signals: SlotSignals;
  readonly slotSignal: AbortSignal[];
}

interface BatchStage extends Counters {
  readonly kind: "batch";
  readonly name: string;
  readonly maxSize: number;
  readonly minSize: number;
  readonly maxWaitMs: number | undefined;
  /** The forming batch; its first token (the carrier) stays in the run. */
  items: unknown[];
  carrier: Token | null;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** maxWaitMs passed while the batch was below minSize. */
  due: boolean;
  /**
   * Input order only: the first token of the order list this batch has not
   * taken yet (null: past the end). Every token before it has passed this
   * stage; every token from it on is at this stage or upstream.
   */
  cursor: Token | null;
  /** A flatten comes later: the forming batch keeps its members' tokens. */
  readonly track: boolean;
  members: Token[] | null;
}

interface FlattenStage extends Counters {
  readonly kind: "flatten";
  readonly name: string;
}

type RuntimeStage = WorkStage | BatchStage | FlattenStage;

interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(reason: unknown): void;
}

const RUNNING = 0;
const STOPPING = 1;
const DONE = 2;
/**
 * The weight of one source item. Weights are integers in these units, so a
 * flattened item's share (its weight split in whole units) sums back exactly,
 * budget comparisons are exact, and stats (weights / UNIT, a power of two)
 * balance exactly: `itemsIn === itemsOut + skipped + … + inFlight`.
 */
const UNIT = 2 ** 20;
const DONE_RESULT: IteratorResult<never> = Object.freeze({
  done: true,
  value: undefined,
});
const NO_ERROR = Symbol("no error");
// Events are dispatched per type only once someone listens to that type.
const STARTED = 1;
const COMPLETED = 2;
const RETRYING = 4;
const FAILED = 8;
const SKIPPED = 16;
const EVENT_BITS: Record<string, number> = {
  started: STARTED,
  completed: COMPLETED,
  retrying: RETRYING,
  failed: FAILED,
  skipped: SKIPPED,
};
/**
 * Calls are timed one in 128 (a clock read costs about as much as scheduling
 * an item) unless some stage's calls take longer than this (ms) on average.
 */
const TIME_ALL_ABOVE_MS = 0.1;
/**
 * Results' tokens kept for reuse by later source items, at most: one is
 * enough in the steady state (a result goes out, the next item comes in);
 * the bound keeps a flatten that multiplies items from hoarding them.
 */
const SPARE_MAX = 64;

const counters = (): Counters => ({
  completed: 0,
  failed: 0,
  skipped: 0,
  retried: 0,
  backingOff: 0,
});

function makeStage(
  s: NamedSpec,
  at: number,
  specs: readonly NamedSpec[],
): RuntimeStage {
  const spec = s.spec;
  if (spec.kind === "batch") {
    return {
      kind: "batch",
      name: s.name,
      maxSize: spec.maxSize,
      minSize: spec.minSize,
      maxWaitMs: spec.maxWaitMs,
      items: [],
      carrier: null,
      timer: undefined,
      due: false,
      cursor: null,
      track: specs.some((x, i) => i > at && x.spec.kind === "flatten"),
      members: null,
      ...counters(),
    };
  }
  if (spec.kind === "flatten") {
    return { kind: "flatten", name: s.name, ...counters() };
  }
  const { retry, timeoutMs, onError, rateLimit } = spec;
  const signals = new SlotSignals();
  return {
    kind: spec.kind,
    name: s.name,
    fns: spec.fns,
    concurrency: spec.concurrency,
    plain: !retry && timeoutMs === undefined && !rateLimit &&
      onError === "fail",
    retry,
    timeoutMs,
    onError,
    limiter: rateLimit &&
      new RateLimiter(rateLimit.limit, rateLimit.intervalMs),
    latency: new Histogram(),
    queueWait: new Histogram(),
    recentMs: 0,
    timedCalls: 0,
    slotToken: [],
    slotSince: [],
    running: 0,
    queue: new Fifo<Token>(),
    freeIds: [],
    nextId: 0,
    signals,
    slotSignal: signals.signals,
    ...counters(),
  };
}

/**
 * The read-ahead limit: `bufferSize` plus what the stages can hold in work,
 * each counted in source items (a token after a batch of 32 may stand for 32).
 */
function readAheadLimit(specs: readonly NamedSpec[], bufferSize: number) {
  let limit = bufferSize;
  let perToken = 1;
  for (const { spec } of specs) {
    if (spec.kind === "batch") {
      limit += spec.maxSize * perToken;
      perToken *= spec.maxSize;
    } else if (spec.kind !== "flatten" && spec.concurrency !== Infinity) {
      limit += spec.concurrency * perToken;
    }
  }
  return Math.max(limit, 1);
}

async function runSequence(
  fns: readonly TaskFn[],
  value: unknown,
  ctx: TaskContext,
): Promise<unknown> {
  for (let i = 0; i < fns.length; i++) value = await fns[i](value, ctx);
  return value;
}

/**
 * Runs one flow. Items are read from the source while the read-ahead budget
 * allows, move through the stages as tokens, and leave as results (in input
 * or completion order), as filtered, or cancelled with the run.
 */
export class Scheduler {
  readonly #stages: RuntimeStage[];
  readonly #n: number;
  readonly #config: RunConfig;
  readonly #source: Source<unknown>;
  #reader: SourceReader<unknown> | null = null;
  #state = RUNNING;
  #started = false;

  // Budget: `held` (source items read and not yet out) never exceeds `limit`.
  readonly #limit: number;
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

  /**
   * Input order: tokens are kept in the order list (`#head` … `#tail`). Off
   * for a run whose results are placed directly (`#direct`).
   */
  #linked: boolean;
  // Input order: the order list, from the oldest token (the next result) on.
  #head: Token | null = null;
  #tail: Token | null = null;
  readonly #batchStages: BatchStage[] = [];
  /** The first stage, when it is a batch (see #admit). */
  readonly #firstBatch: BatchStage | null;
  /**
   * The first stage, when it is a plain map or filter and the source answers
   * synchronously: its workers read their next item themselves (#nextItem),
   * so the pump only starts idle workers and no item waits in its queue.
   */
  #firstWork: WorkStage | null = null;
  // Completion order: results not yet taken.
  readonly #ready = new Fifo<Token>();

  #waiters: Waiter[] = [];
  #collector: unknown[] | null = null;
  /**
   * `collect()` of a run through map stages only: every result goes straight
   * to its place in this array when it is done (in input order: its index),
   * so results neither wait in the order list nor count in the read-ahead
   * budget. In input order, skipped items leave gaps (`#gaps`: their
   * indices), closed at the end. Null otherwise.
   */
  #direct: unknown[] | null = null;
  /** Tokens out of the run, linked by `next`, for reuse (`#recycle`). */
  #spare: Token | null = null;
  #spares = 0;
  #gaps: number[] = [];
  #onCollected: ((failed: boolean, reason: unknown) => void) | null = null;
  #onSettled: (() => void)[] = [];
  #reason: unknown = undefined;
  /** Settled after a stop (not at the end of the input). */
  #stopped = false;
  #undelivered = false;
  #quiet = false;

  // Events: dispatched only once someone listens (no listener, no cost).
  #listening = 0; // a bit per event type (EVENT_BITS)
  #progressTimer: ReturnType<typeof setInterval> | undefined;
  readonly #backoffTimers = new Set<ReturnType<typeof setTimeout>>();

  // Stats. Item counts are weights (source items); see FlowStats.
  readonly #startedAt = Date.now();
  readonly #latency = new Histogram();
  #timeAll = false;
  #itemsIn = 0;
  #results = 0;
  #outWeight = 0;
  #filteredWeight = 0;
  #skippedWeight = 0;
  #failedWeight = 0;
  #cancelledWeight = 0;

  constructor(
    specs: readonly NamedSpec[],
    source: Source<unknown>,
    config: RunConfig,
  ) {
    this.#stages = specs.map((s, at) => makeStage(s, at, specs));
    this.#n = specs.length;
    this.#config = config;
    this.#linked = config.ordered;
    this.#source = source;
    this.#limit = readAheadLimit(specs, config.bufferSize) * UNIT;
    this.#refill =
      (config.bufferSize >= 512 ? Math.floor(config.bufferSize / 16) : 1) *
      UNIT;
    this.#atStage = new Array(this.#n + 1).fill(0);
    for (const st of this.#stages) {
      if (st.kind === "batch") this.#batchStages.push(st);
    }
    const first = this.#stages[0];
    this.#firstBatch = first?.kind === "batch" ? first : null;
    // Lazy: nothing runs before the caller's synchronous code has finished.
    queueMicrotask(() => this.#start());
  }

  // ---- lifecycle ---------------------------------------------------------

  #start(): void {
    if (this.#state !== RUNNING) return;
    this.#started = true;
    const signal = this.#config.signal;
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
    if (
      this.#reader.sync && first !== undefined &&
      (first.kind === "map" || first.kind === "filter") && first.plain
    ) {
      this.#firstWork = first;
    }
    this.#pump();
  }

  #onSignal = (): void => {
    this.stop(this.#config.signal!.reason);
  };

  /**
   * Cancels the run: stops reading, aborts every in-flight `ctx.signal`,
   * clears timers, and settles once every in-flight call has returned.
   * `quiet` (the consumer left) settles without an error.
   */
  stop(reason: unknown, quiet = false): void {
    if (this.#state !== RUNNING) return;
    this.#state = STOPPING;
    this.#reason = reason;
    this.#quiet = quiet;
    for (const st of this.#stages) {
      if (st.kind === "map" || st.kind === "filter") {
        st.signals.abort(reason); // every ctx.signal of the stage
        st.queue.clear();
        st.backingOff = 0;
        st.limiter?.close(reason);
      }
    }
    for (const st of this.#batchStages) {
      if (st.timer !== undefined) clearTimeout(st.timer);
      st.timer = undefined;
      st.items = [];
      st.carrier = null;
      st.members = null;
      st.due = false;
    }
    for (const timer of this.#backoffTimers) clearTimeout(timer);
    this.#backoffTimers.clear();
    // Results not taken yet are dropped with the rest: a stopped run delivers
    // nothing more. `collect()` rejects, so what it gathered is cancelled too.
    this.#cancelledWeight += this.#held;
    this.#held = 0;
    if (this.#collector !== null) {
      this.#cancelledWeight += this.#outWeight;
      this.#outWeight = 0;
      this.#results = 0;
    }
    this.#endInput(reason);
    this.#maybeSettle();
  }

  /** Reads no more: a source not read to its end is closed. */
  #endInput(reason: unknown): void {
    if (this.#sourceDone) return;
    this.#sourceDone = true;
    // Stopped before it started: open the source only to close it, so a
    // stream is cancelled and an iterator's return() runs.
    if (this.#reader === null) {
      try {
        this.#reader = openSource(this.#source);
      } catch {
        // Nothing was opened, so there is nothing to close.
      }
    }
    // The source's cleanup (return(), cancel()) is someone else's code: it
    // is started, not awaited (it may never finish, or wait behind a pull
    // that never settles), and its failure is ignored: the run has its
    // outcome already.
    const reader = this.#reader;
    if (reader !== null) {
      Promise.resolve().then(() => reader.close(reason)).catch(() => {});
    }
  }

  #maybeSettle(): void {
    if (this.#state === STOPPING && this.#running === 0) this.#finish();
  }

  #finish(): void {
    const failed = this.#state === STOPPING;
    this.#stopped = failed;
    this.#state = DONE;
    if (this.#progressTimer !== undefined) {
      clearInterval(this.#progressTimer);
      this.#progressTimer = undefined;
      this.#progress(); // the final figures
    }
    this.#config.signal?.removeEventListener("abort", this.#onSignal);
    // The error (if any) is delivered once, to the consumer.
    this.#undelivered = failed && !this.#quiet;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (this.#undelivered) {
        this.#undelivered = false;
        w.reject(this.#reason);
      } else w.resolve(DONE_RESULT);
    }
    const onCollected = this.#onCollected;
    this.#onCollected = null;
    if (onCollected !== null) {
      // A stopped run rejects collect() even when stopped quietly (disposed):
      // its results are incomplete.
      if (this.#direct !== null && !failed) this.#closeGaps(this.#direct);
      this.#undelivered = false;
      onCollected(failed, this.#reason);
    }
    const callbacks = this.#onSettled;
    this.#onSettled = [];
    for (const cb of callbacks) cb();
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
        this.#pump();
      }
      const value = t.value;
      this.#recycle(t);
      return Promise.resolve({ done: false, value });
    }
    if (this.#state === DONE) {
      if (!this.#undelivered) return Promise.resolve(DONE_RESULT);
      this.#undelivered = false;
      return Promise.reject(this.#reason);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /**
   * Takes every result into `into`; `onCollected(failed, reason)` runs once
   * the run has settled.
   */
  collect(
    into: unknown[],
    onCollected: (failed: boolean, reason: unknown) => void,
  ): void {
    this.#collector = into;
    this.#onCollected = onCollected;
    // Nothing read yet, and every stage gives one result per item: each
    // result's place in `into` is known when it is done.
    if (
      this.#itemsIn === 0 && this.#state === RUNNING &&
      this.#stages.every((st) => st.kind === "map")
    ) {
      this.#direct = into;
      this.#linked = false;
      // An array's length is the output's (skips aside): reserve it.
      if (Array.isArray(this.#source)) into.length = this.#source.length;
    }
    if (this.#state === DONE) {
      this.#onCollected = null;
      this.#undelivered = false;
      return onCollected(this.#stopped, this.#reason);
    }
    this.#deliver();
    this.#pump();
  }

  /** Resolves once the run has settled (after a stop: every call returned). */
  settled(): Promise<void> {
    if (this.#state === DONE) return Promise.resolve();
    return new Promise((resolve) => this.#onSettled.push(resolve));
  }

  #take(): Token | null {
    if (this.#state !== RUNNING) return null; // a stopped run delivers nothing
    let t: Token | null;
    if (this.#linked) {
      t = this.#head;
      if (t === null || t.stage !== this.#n) return null;
      if (t.failed) {
        this.stop(t.value);
        return null;
      }
      this.#unlink(t);
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
    this.#outWeight += t.weight;
    this.#results++;
    // bornAt is NaN for tokens timed only from a later stage on.
    if (t.times !== null && !Number.isNaN(t.times.bornAt)) {
      this.#latency.record(performance.now() - t.times.bornAt);
    }
  }

  /** `#direct`: `t`'s result goes to its place (grown by doubling). */
  #place(into: unknown[], t: Token): void {
    const at = this.#config.ordered ? t.index : this.#results;
    if (at >= into.length) into.length = Math.max(at + 1, 2 * into.length, 16);
    into[at] = t.value;
    this.#out(t);
    this.#recycle(t);
  }

  /**
   * `t` has left the run as a result and nothing refers to it any more (it is
   * unlinked, out of every slot; events copied its fields): a later source
   * item may reuse it (`#token`), so a run in its steady state allocates no
   * token per item.
   */
  #recycle(t: Token): void {
    if (this.#spares >= SPARE_MAX) return;
    t.value = undefined;
    t.times = null;
    t.members = null;
    t.next = this.#spare;
    this.#spare = t;
    this.#spares++;
  }

  /** `#direct`, at the end: closes the gaps of skipped items, trims the rest. */
  #closeGaps(into: unknown[]): void {
    const gaps = this.#gaps;
    if (gaps.length > 0) {
      gaps.sort((a, b) => a - b);
      const end = this.#results + gaps.length;
      let to = gaps[0];
      for (let from = to, g = 0; from < end; from++) {
        if (g < gaps.length && gaps[g] === from) g++;
        else into[to++] = into[from];
      }
    }
    into.length = this.#results;
  }

  #deliver(): void {
    const collector = this.#collector;
    if (collector !== null) {
      for (let t = this.#take(); t !== null; t = this.#take()) {
        collector.push(t.value);
        this.#recycle(t);
      }
      return;
    }
    while (this.#waiters.length > 0) {
      const t = this.#take();
      if (t === null) return;
      this.#waiters.shift()!.resolve({ done: false, value: t.value });
      this.#recycle(t);
    }
  }

  // ---- the pump: read the source while the budget allows -----------------

  #pump(): void {
    if (this.#state !== RUNNING || !this.#started) return;
    if (this.#full) {
      if (this.#held > this.#limit - this.#refill) {
        return this.#checkEnd();
      }
      this.#full = false;
    }
    const first = this.#stages[0];
    const direct = this.#firstWork;
    while (
      !this.#sourceDone && !this.#pulling &&
      this.#held <= this.#limit - UNIT &&
      // Nothing waits for a worker of the first stage; with a synchronous
      // source, a worker is free (busy ones read their next item themselves).
      (first === undefined || first.kind !== "map" && first.kind !== "filter" ||
        first.queue.size === 0 &&
          (direct === null || first.running < first.concurrency))
    ) {
      // A batch as the first stage, fed from an array: copy a run of items
      // straight into the forming batch (see #admit).
      const batch = this.#firstBatch;
      if (
        batch !== null && batch.carrier !== null &&
        this.#reader!.fill !== undefined && this.#config.id === undefined
      ) {
        const room = Math.min(
          batch.maxSize - batch.items.length,
          Math.floor((this.#limit - this.#held) / UNIT),
        );
        const k = this.#reader!.fill(batch.items, room);
        if (k > 0) {
          const members = batch.members;
          if (members !== null) {
            // No `id` option here (ids are indices); consecutive items.
            const from = batch.items.length - k;
            for (let j = 0; j < k; j++) {
              const index = this.#itemsIn + j;
              members.push(this.#member(batch.items[from + j], index, index));
            }
          }
          this.#itemsIn += k;
          this.#held += k * UNIT;
          batch.carrier.weight += k * UNIT;
          if (
            batch.items.length >= batch.maxSize ||
            (batch.due && batch.items.length >= batch.minSize)
          ) {
            this.#flush(batch, 0);
          }
          if (this.#state !== RUNNING) return;
          continue;
        }
      }
      const r = this.#pull();
      if (r === null) return;
      if (r.done) this.#sourceDone = true;
      else this.#admit(r.value);
      if (this.#state !== RUNNING) return;
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
      this.#sourceDone = true; // a throwing source is finished
      this.stop(error);
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
    if (this.#state !== RUNNING) {
      // Read after the stop (perhaps after the run settled): still counted.
      if (!r.done) this.#admit(r.value);
      return;
    }
    if (r.done) this.#sourceDone = true;
    else this.#admit(r.value);
    this.#pump();
  };

  #onPullError = (error: unknown): void => {
    this.#pulling = false;
    this.#sourceDone = true; // a throwing source is finished
    this.stop(error);
  };

  #admit(value: unknown): void {
    const index = this.#itemsIn++;
    const id = this.#state === RUNNING ? this.#idOf(value, index) : undefined;
    if (this.#state !== RUNNING) {
      // The run stopped while this item was read (or id() threw): it is in.
      this.#cancelledWeight += UNIT;
      return;
    }
    // A batch as the first stage takes items straight from the source, in
    // source order: a member of a forming batch needs no token of its own
    // (its weight goes to the batch's first token, which is in the run).
    const first = this.#firstBatch;
    if (first !== null && first.carrier !== null) {
      this.#held += UNIT;
      first.carrier.weight += UNIT;
      first.members?.push(this.#member(value, index, id));
      const items = first.items;
      items.push(value);
      if (
        items.length >= first.maxSize ||
        (first.due && items.length >= first.minSize)
      ) {
        this.#flush(first, 0);
      }
      return;
    }
    this.#enter(this.#token(value, index, id), 0);
  }

  /** The item's id: `run(source, { id })`'s, or its index. Stops if it throws. */
  #idOf(value: unknown, index: number): unknown {
    const id = this.#config.id;
    if (id === undefined) return index;
    try {
      return id(value, index);
    } catch (error) {
      this.stop(error);
      return undefined;
    }
  }

  /** A token for a source item, counted in the run (not yet in a stage). */
  #token(value: unknown, index: number, id: unknown): Token {
    let t = this.#spare;
    if (t === null) t = new Token(value, index, id, UNIT);
    else {
      // step, partial and attempt are back at 0 once a token is a result.
      this.#spare = t.next;
      this.#spares--;
      t.next = null;
      t.value = value;
      t.index = index;
      t.id = id;
      t.stage = 0;
      t.weight = UNIT;
    }
    if (this.#timeAll || (index & 127) === 0 || index < 16) {
      t.times = { bornAt: performance.now(), enteredAt: 0 };
    }
    this.#held += UNIT;
    this.#live++;
    if (this.#linked) this.#append(t);
    return t;
  }

  /**
   * A worker of the first stage (`#firstWork`) found its queue empty: reads
   * the next item for it straight from the synchronous source, if the budget
   * allows, so the item skips the pump and the queue. Undefined otherwise
   * (the worker then leaves the rest to #pump). It repeats #pull and #idOf
   * inline: calling them made W1 bimodal on Deno (2.0× or 2.4× the array
   * loop from one process to the next, against a steady 2.0× inline).
   */
  #nextItem(): Token | undefined {
    if (
      this.#full || this.#sourceDone ||
      this.#held > this.#limit - UNIT
    ) {
      return undefined;
    }
    let r;
    try {
      r = this.#reader!.pull();
    } catch (error) {
      this.#sourceDone = true; // a throwing source is finished
      this.stop(error);
      return undefined;
    }
    if (r instanceof Promise) {
      this.#pulling = true;
      r.then(this.#onPulled, this.#onPullError);
      return undefined;
    }
    if (r.done) {
      this.#sourceDone = true;
      return undefined;
    }
    const index = this.#itemsIn++;
    let id: unknown = index;
    if (this.#state === RUNNING && this.#config.id !== undefined) {
      try {
        id = this.#config.id(r.value, index);
      } catch (error) {
        this.stop(error);
      }
    }
    if (this.#state !== RUNNING) {
      // The run stopped while this item was read (or id() threw): it is in.
      this.#cancelledWeight += UNIT;
      return undefined;
    }
    const t = this.#token(r.value, index, id);
    this.#atStage[0]++;
    return t;
  }

  /** Checks the end of input: final batch flushes, then the end of the run. */
  #checkEnd(): void {
    if (!this.#sourceDone || this.#pulling || this.#state !== RUNNING) return;
    let upstream = 0;
    for (let s = 0; s < this.#n; s++) {
      const st = this.#stages[s];
      // Nothing can reach this batch any more: emit the remainder.
      if (st.kind === "batch" && upstream === 0 && st.carrier !== null) {
        this.#flush(st, s);
      }
      upstream += this.#atStage[s];
    }
    if (this.#live === 0) {
      this.#finish();
    }
  }

  // ---- moving tokens -----------------------------------------------------

  /** Puts `t` into stage `s` (or makes it a result when `s === n`). */
  #enter(t: Token, s: number): void {
    t.stage = s;
    if (s === this.#n) {
      const direct = this.#direct;
      if (direct !== null) return this.#place(direct, t);
      this.#atStage[s]++;
      if (this.#linked) {
        if (t === this.#head) this.#deliver();
      } else {
        this.#ready.push(t);
        this.#deliver();
      }
      return;
    }
    this.#atStage[s]++;
    const st = this.#stages[s];
    if (st.kind === "batch") {
      if (this.#linked) this.#feedBatch(st, s);
      else this.#addToBatch(st, s, t);
    } else if (st.kind === "flatten") {
      this.#expand(st, s, t);
    } else if (st.running < st.concurrency) {
      this.#startTask(st, t);
    } else {
      let times = t.times;
      if (times === null && this.#timeAll) {
        times = t.times = { bornAt: NaN, enteredAt: 0 };
      }
      if (times !== null) times.enteredAt = performance.now();
      st.queue.push(t);
    }
  }

  /** Moves `t` from its stage to the next one. */
  #forward(t: Token): void {
    this.#atStage[t.stage]--;
    this.#enter(t, t.stage + 1);
  }

  /** `t` leaves the run without a result: filtered out, or skipped. */
  #drop(t: Token, skipped = false): void {
    this.#atStage[t.stage]--;
    this.#live--;
    this.#held -= t.weight;
    if (skipped) this.#skippedWeight += t.weight;
    else this.#filteredWeight += t.weight;
    if (this.#direct !== null && this.#config.ordered) this.#gaps.push(t.index);
    if (this.#linked) {
      const wasHead = t === this.#head;
      this.#unlink(t);
      if (wasHead) this.#deliver();
      // A batch whose cursor moved on may now take waiting tokens.
      for (let s = 0; s < this.#n && this.#state === RUNNING; s++) {
        const st = this.#stages[s];
        if (st.kind === "batch") this.#feedBatch(st, s);
      }
    }
  }

  // ---- map and filter ----------------------------------------------------

  #startTask(st: WorkStage, t: Token): void {
    st.running++;
    this.#running++;
    const workerId = st.freeIds.length > 0 ? st.freeIds.pop()! : this.#slot(st);
    if (!st.plain) {
      this.#slowWorker(st, t, workerId);
      return;
    }
    this.#loop(st, t, workerId);
  }

  /** A new worker slot id, with its signal. */
  #slot(st: WorkStage): number {
    const id = st.nextId++;
    st.signals.get(id);
    return id;
  }

  /** Calls the stage function(s) on `value`; may throw synchronously. */
  #call(
    st: WorkStage,
    t: Token,
    workerId: number,
    value: unknown,
    signal: AbortSignal,
    step = -1,
  ): unknown {
    const ctx = this.#ctx(st, t, workerId, signal);
    const fns = st.fns;
    if (step >= 0) return fns[step](value, ctx);
    return fns.length === 1 ? fns[0](value, ctx) : runSequence(fns, value, ctx);
  }

  /** The context of a call (or of a `retryIf` / `onError` decision) on `t`. */
  #ctx(
    st: WorkStage,
    t: Token,
    workerId: number,
    signal: AbortSignal,
  ): TaskContext {
    return {
      signal,
      workerId,
      itemId: t.id,
      index: t.index,
      attempt: t.attempt,
      stage: st.name,
      context: this.#config.context,
    };
  }

  /**
   * A call on `t` begins: its timing and `"started"`. False when a listener
   * stopped the run (then the call must not run).
   */
  #begin(st: WorkStage, t: Token, workerId: number): boolean {
    if (this.#state !== RUNNING) return false; // stopped by the last #pump()
    st.slotToken[workerId] = t;
    let times = t.times;
    // Decided at call time: once calls are slow, every one is timed.
    if (times === null && this.#timeAll) {
      times = t.times = { bornAt: NaN, enteredAt: 0 };
    }
    if (times !== null) this.#timeStart(st, times, workerId);
    else st.slotSince[workerId] = NaN;
    if ((this.#listening & STARTED) === 0) return true;
    this.#emit("started", st, t, workerId);
    return this.#state === RUNNING;
  }

  /** A call on `t` succeeded: its result moves on (or is filtered out). */
  #handOn(st: WorkStage, t: Token, workerId: number, value: unknown): void {
    st.completed++;
    st.slotToken[workerId] = null;
    if (t.times !== null) this.#timeEnd(st, workerId);
    if (this.#listening & COMPLETED) {
      this.#emit("completed", st, t, workerId);
      if (this.#state !== RUNNING) return; // a listener stopped the run
    }
    this.#pass(st, t, value);
  }

  /** `value` (a result, or an `onError` substitute) moves on from `st`. */
  #pass(st: WorkStage, t: Token, value: unknown): void {
    t.attempt = 0;
    if (st.kind === "filter") {
      if (value) this.#forward(t);
      else this.#drop(t);
    } else {
      t.value = value;
      this.#forward(t);
    }
  }

  /**
   * A plain stage's worker: runs `t`, then keeps taking queued tokens (one
   * `await` per call, no closures); releases its slot when none is left.
   * Every call settles asynchronously (no re-entrance, no deep recursion).
   * Never rejects.
   */
  async #loop(st: WorkStage, t: Token, workerId: number): Promise<void> {
    const signal = st.slotSignal[workerId];
    for (;;) {
      t.attempt = 1;
      if (!this.#begin(st, t, workerId)) return this.#release(st, workerId);
      let value: unknown;
      try {
        value = await this.#call(st, t, workerId, t.value, signal);
      } catch (error) {
        await undefined; // a synchronous throw still settles asynchronously
        return this.#taskFailed(st, t, workerId, error);
      }
      if (this.#state !== RUNNING) return this.#release(st, workerId);
      this.#handOn(st, t, workerId, value);
      if (this.#state !== RUNNING) return this.#release(st, workerId);
      let next = st.queue.shift();
      if (next === undefined && st === this.#firstWork) {
        next = this.#nextItem();
        // Read here: the pump has nothing to do unless a worker is idle.
        if (next !== undefined && st.running === st.concurrency) {
          t = next;
          continue;
        }
      }
      if (next === undefined) this.#release(st, workerId);
      this.#pump();
      if (next === undefined) return;
      t = next;
    }
  }

  #taskFailed(st: WorkStage, t: Token, workerId: number, error: unknown): void {
    if (this.#state === RUNNING) {
      this.#failed(st, t, workerId, error);
      if (this.#state === RUNNING) this.#fault(st, t, error);
    }
    this.#release(st, workerId);
    this.#reuseSlot(st);
  }

  /** `t` failed for good and no `onError` rescued it: the run fails. */
  #fault(st: WorkStage, t: Token, cause: unknown): void {
    const error = new PipelineError(st.name, t.id, t.index, t.value, cause);
    if (!this.#config.failAtTurn || !this.#linked) return this.stop(error);
    // At its turn: reading stops, earlier items go on to be delivered, and
    // the run stops when the consumer reaches `t`.
    t.failed = true;
    t.value = error;
    this.#endInput(error);
    this.#atStage[t.stage]--;
    this.#enter(t, this.#n);
    this.#checkEnd(); // batches waiting for more input flush now
  }

  /** After a failure at its turn, a freed slot takes the next queued token. */
  #reuseSlot(st: WorkStage): void {
    if (this.#state !== RUNNING || st.running >= st.concurrency) return;
    const next = st.queue.shift();
    if (next !== undefined) this.#startTask(st, next);
  }

  /** Frees a worker slot; once stopping, the last one settles the run. */
  #release(st: WorkStage, workerId: number): void {
    st.running--;
    this.#running--;
    st.freeIds.push(workerId);
    st.slotToken[workerId] = null;
    if (this.#state !== RUNNING) this.#maybeSettle();
  }

  // ---- the slow path: rate limit, timeouts, retries, error policies --------

  /** A worker of a stage with options: `t` first, then queued tokens. */
  async #slowWorker(st: WorkStage, t: Token, workerId: number): Promise<void> {
    for (let next: Token | undefined = t; next !== undefined;) {
      st.slotToken[workerId] = next;
      st.slotSince[workerId] = NaN; // until the call starts (rate limit)
      // false: the slot was released (the run is stopping).
      if (!await this.#attempts(st, next, workerId)) return;
      next = this.#state === RUNNING ? st.queue.shift() : undefined;
      if (next === undefined) this.#release(st, workerId);
      this.#pump();
    }
  }

  /**
   * Runs `t` through the stage's function(s) until it succeeds, goes to wait
   * out a retry backoff (holding no slot: the worker goes on with the next
   * queued token), or fails for good. Resolves false once the worker has
   * released its slot.
   */
  async #attempts(st: WorkStage, t: Token, workerId: number): Promise<boolean> {
    const fns = st.fns;
    const wholeStage = st.retry?.scope === "stage" || fns.length === 1;
    let value = t.step === 0 ? t.value : t.partial;
    const slot = st.signals.get(workerId);
    for (;;) {
      if (st.limiter !== undefined && !st.limiter.tryAcquire()) {
        try {
          await st.limiter.acquire(slot);
        } catch {
          // The run stopped while waiting.
        }
      }
      if (this.#state !== RUNNING) {
        this.#release(st, workerId);
        return false;
      }
      // One attempt: the whole sequence, or (scope "task") one function.
      t.attempt++;
      if (!this.#begin(st, t, workerId)) {
        this.#release(st, workerId);
        return false;
      }
      const input = value;
      let error: unknown;
      let ok = false;
      const deadline = st.timeoutMs === undefined
        ? undefined
        : new Deadline(slot, st.timeoutMs, `Stage "${st.name}"`);
      try {
        const signal = deadline ? deadline.signal : slot;
        value = wholeStage
          ? await this.#call(st, t, workerId, value, signal)
          : await this.#call(st, t, workerId, value, signal, t.step);
        ok = true;
      } catch (e) {
        error = e;
      }
      if (deadline !== undefined && deadline.end()) {
        ok = false;
        error = deadline.reason;
      }
      if (this.#state !== RUNNING) {
        this.#release(st, workerId);
        return false;
      }
      if (ok && !wholeStage && ++t.step < fns.length) {
        t.attempt = 0; // the next function gets its own attempts
        continue;
      }
      if (ok) {
        t.step = 0;
        t.partial = undefined;
        this.#handOn(st, t, workerId, value);
        return true;
      }
      // Failed: retry (the slot is free meanwhile), or a final failure.
      value = input;
      const delay = this.#retryDelay(st, t, workerId, slot, error);
      if (typeof delay === "number") {
        t.partial = value;
        this.#backoff(st, t, delay);
        return true;
      }
      if (delay !== undefined) error = delay.error; // retryIf threw
      t.step = 0;
      t.partial = undefined;
      return await this.#finalFailure(st, t, workerId, error);
    }
  }

  /**
   * The wait before retrying `t`, or undefined for no retry (or
   * `{ error }` when `retryIf` threw).
   */
  #retryDelay(
    st: WorkStage,
    t: Token,
    workerId: number,
    signal: AbortSignal,
    error: unknown,
  ): number | undefined | { error: unknown } {
    const retry = st.retry;
    if (retry === undefined || t.attempt >= retry.attempts) return undefined;
    const ctx = this.#ctx(st, t, workerId, signal);
    const delay = retryDelay(retry, t.attempt, error, ctx);
    if (typeof delay !== "number") return delay;
    st.retried++;
    if (this.#listening & RETRYING) {
      this.#emit("retrying", st, t, workerId, error);
    }
    return delay;
  }

  /** Waits out a backoff holding no slot, then `t` re-enters its stage first. */
  #backoff(st: WorkStage, t: Token, delay: number): void {
    if (this.#state !== RUNNING) return; // a "retrying" listener stopped it
    st.backingOff++;
    const timer = setTimeout(() => {
      this.#backoffTimers.delete(timer);
      st.backingOff--;
      if (this.#state !== RUNNING) return;
      if (st.running < st.concurrency) this.#startTask(st, t);
      else st.queue.unshift(t); // a retrying item keeps its place
    }, delay);
    this.#backoffTimers.add(timer);
  }

  /** Counts a final failure and fires `"failed"`. */
  #failed(st: WorkStage, t: Token, workerId: number, error: unknown): void {
    st.failed++;
    this.#failedWeight += t.weight;
    if (this.#listening & FAILED) this.#emit("failed", st, t, workerId, error);
  }

  /** Applies `onError` to an item that failed for good. */
  async #finalFailure(
    st: WorkStage,
    t: Token,
    workerId: number,
    error: unknown,
  ): Promise<boolean> {
    this.#failed(st, t, workerId, error);
    if (this.#state !== RUNNING) { // a "failed" listener stopped the run
      this.#release(st, workerId);
      return false;
    }
    let decision: ErrorDecision | unknown = st.onError;
    let cause = error;
    if (typeof decision === "function") {
      const ctx = this.#ctx(st, t, workerId, st.signals.get(workerId));
      try {
        decision = await (st.onError as Exclude<OnError, string>)(
          error,
          t.value,
          ctx,
        );
      } catch (thrown) {
        decision = "fail";
        cause = thrown;
      }
      if (this.#state !== RUNNING) {
        this.#release(st, workerId);
        return false;
      }
    }
    if (decision === "skip") {
      st.skipped++;
      st.slotToken[workerId] = null;
      this.#config.failures.push({
        itemId: t.id,
        index: t.index,
        stage: st.name,
        item: t.value,
        error,
        attempts: t.attempt,
      });
      // Counted skipped before "skipped" fires: a listener that stops the run
      // finds it out of the run, not among the cancelled.
      this.#drop(t, true);
      if (this.#listening & SKIPPED) {
        this.#emit("skipped", st, t, workerId, error);
      }
      t.attempt = 0;
      return true;
    }
    if (
      typeof decision === "object" && decision !== null && "value" in decision
    ) {
      st.slotToken[workerId] = null;
      this.#pass(st, t, decision.value); // not a "completed" call
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
    this.#fault(st, t, cause);
    this.#release(st, workerId);
    this.#reuseSlot(st);
    return false;
  }

  // ---- events and timing -------------------------------------------------

  #emit(
    type: string,
    st: WorkStage,
    t: Token,
    workerId: number,
    error: unknown = NO_ERROR,
  ): void {
    const detail: Record<string, unknown> = {
      itemId: t.id,
      index: t.index,
      stage: st.name,
      workerId,
      attempt: t.attempt,
      timestamp: Date.now(),
    };
    if (error !== NO_ERROR) detail.error = error;
    this.#config.target.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Someone listens to the flow's events (from now on they are dispatched). */
  listen(type: string): void {
    if (Object.hasOwn(EVENT_BITS, type)) this.#listening |= EVENT_BITS[type];
    if (
      type === "progress" && this.#progressTimer === undefined &&
      this.#state === RUNNING
    ) {
      this.#progressTimer = setInterval(
        () => this.#progress(),
        this.#config.progressIntervalMs,
      );
    }
  }

  #progress(): void {
    this.#config.target.dispatchEvent(
      new CustomEvent("progress", { detail: this.stats() }),
    );
  }

  #timeStart(st: WorkStage, times: Times, workerId: number): void {
    const now = performance.now();
    st.slotSince[workerId] = now;
    st.queueWait.record(times.enteredAt > 0 ? now - times.enteredAt : 0);
    times.enteredAt = 0;
  }

  #timeEnd(st: WorkStage, workerId: number): void {
    const ms = performance.now() - st.slotSince[workerId];
    st.latency.record(ms);
    // Slow calls: timing each one costs nothing in comparison.
    st.recentMs += (ms - st.recentMs) / 8;
    // Every 16 timed calls: time them all while some stage is slow (then the
    // clock costs nothing in comparison), one in 128 otherwise. Reversible, so
    // slow warm-up calls do not switch it on for good.
    if ((++st.timedCalls & 15) === 0) {
      this.#timeAll = this.#stages.some((x) =>
        (x.kind === "map" || x.kind === "filter") &&
        x.recentMs > TIME_ALL_ABOVE_MS
      );
    }
  }

  // ---- batch -------------------------------------------------------------

  /** Input order: take the tokens that reached this stage, in list order. */
  #feedBatch(st: BatchStage, s: number): void {
    for (let c = st.cursor; c !== null && c.stage === s; c = st.cursor) {
      st.cursor = c.next;
      this.#addToBatch(st, s, c);
      if (this.#state !== RUNNING) return;
    }
  }

  #addToBatch(st: BatchStage, s: number, t: Token): void {
    const carrier = st.carrier;
    if (carrier === null) {
      st.carrier = t;
      if (st.track) st.members = [this.#asMember(t)];
      st.items.push(t.value);
      if (st.maxWaitMs !== undefined) {
        st.timer = setTimeout(() => this.#onBatchTimer(st, s), st.maxWaitMs);
      }
    } else {
      st.items.push(t.value);
      st.members?.push(t);
      carrier.weight += t.weight;
      this.#atStage[s]--;
      this.#live--;
      if (this.#linked) this.#unlink(t);
    }
    if (
      st.items.length >= st.maxSize || (st.due && st.items.length >= st.minSize)
    ) {
      this.#flush(st, s);
    }
  }

  /**
   * A batch's first member: the carrier itself, or (when it is a batch with
   * members of its own) a stand-in that keeps them for a second flatten.
   */
  #asMember(t: Token): Token {
    if (t.members === null) return t;
    const m = new Token(undefined, t.index, t.id, t.weight);
    m.members = t.members;
    t.members = null;
    return m;
  }

  /** A token for a member of a first-stage batch (it had none). */
  #member(value: unknown, index: number, id: unknown): Token {
    const t = new Token(value, index, id, UNIT);
    if (this.#timeAll || (index & 127) === 0 || index < 16) {
      t.times = { bornAt: performance.now(), enteredAt: 0 };
    }
    return t;
  }

  #onBatchTimer(st: BatchStage, s: number): void {
    st.timer = undefined;
    if (this.#state !== RUNNING) return;
    if (st.items.length >= st.minSize) {
      this.#flush(st, s);
      this.#pump();
    } else st.due = true;
  }

  #flush(st: BatchStage, _s: number): void {
    if (st.timer !== undefined) clearTimeout(st.timer);
    st.timer = undefined;
    st.due = false;
    const carrier = st.carrier!;
    carrier.value = st.items;
    carrier.members = st.members;
    st.items = [];
    st.carrier = null;
    st.members = null;
    st.completed++;
    this.#forward(carrier);
  }

  // ---- flatten -----------------------------------------------------------

  #expand(st: FlattenStage, s: number, t: Token): void {
    const value = t.value;
    let elements: ArrayLike<unknown>;
    if (Array.isArray(value)) elements = value;
    else if (
      value !== null && value !== undefined &&
      typeof (value as Iterable<unknown>)[Symbol.iterator] === "function"
    ) {
      try {
        elements = Array.from(value as Iterable<unknown>);
      } catch (error) {
        return this.stop(
          new PipelineError(st.name, t.id, t.index, value, error),
        );
      }
    } else {
      return this.stop(
        new PipelineError(
          st.name,
          t.id,
          t.index,
          value,
          new TypeError(
            `flatten needs an array or an iterable: item ${String(t.id)} is ${
              value === null ? "null" : typeof value
            }`,
          ),
        ),
      );
    }
    st.completed++;
    const count = elements.length;
    if (count === 0) return this.#drop(t);
    this.#atStage[s] += count - 1;
    this.#live += count - 1;
    // As many elements as the batch had members: element i is member i again
    // (its own token: index, id, weight, times). Otherwise (a fan-out) new
    // tokens carry the parent's index and id and a share of its weight.
    const members = t.members !== null && t.members.length === count
      ? t.members
      : null;
    t.members = null;
    const children: Token[] = [t];
    t.value = elements[0];
    if (members !== null && members[0] !== t) { // a stand-in (see #asMember)
      t.index = members[0].index;
      t.id = members[0].id;
      t.members = members[0].members;
    }
    // Whole units: the first `extra` elements of a fan-out carry one more.
    const share = Math.floor(t.weight / count);
    const extra = t.weight - share * count;
    let rest = 0; // the other members' weights (the first keeps the rest)
    let after = t;
    for (let i = 1; i < count; i++) {
      let child: Token;
      if (members !== null) {
        child = members[i];
        child.value = elements[i];
        rest += child.weight;
      } else {
        child = new Token(
          elements[i],
          t.index,
          t.id,
          i < extra ? share + 1 : share,
        );
        // Its parent's birth, sampled like source items (one element in 128,
        // or all while calls are slow): a timed batch of 32 timing all its
        // elements downstream was a quarter of every item's calls in W5.
        if (t.times !== null && (this.#timeAll || (i & 127) === 0)) {
          child.times = { bornAt: t.times.bornAt, enteredAt: 0 };
        }
      }
      child.stage = s;
      if (this.#linked) this.#insertAfter(after, child);
      after = child;
      children.push(child);
    }
    t.weight = members !== null
      ? t.weight - rest
      : extra > 0
      ? share + 1
      : share;
    for (let i = 0; i < count && this.#state === RUNNING; i++) {
      this.#forward(children[i]);
    }
  }

  // ---- the order list (input order only) ---------------------------------

  #append(t: Token): void {
    const tail = this.#tail;
    t.prev = tail;
    if (tail === null) this.#head = t;
    else tail.next = t;
    this.#tail = t;
    for (const st of this.#batchStages) if (st.cursor === null) st.cursor = t;
  }

  #insertAfter(at: Token, t: Token): void {
    const next = at.next;
    t.prev = at;
    t.next = next;
    at.next = t;
    if (next === null) this.#tail = t;
    else next.prev = t;
  }

  #unlink(t: Token): void {
    const { prev, next } = t;
    if (prev === null) this.#head = next;
    else prev.next = next;
    if (next === null) this.#tail = prev;
    else next.prev = prev;
    for (const st of this.#batchStages) if (st.cursor === t) st.cursor = next;
    t.prev = t.next = null;
  }

  // ---- stats ---------------------------------------------------------------

  stats(): FlowStats {
    const elapsedMs = Date.now() - this.#startedAt;
    const items = (weight: number) => weight / UNIT; // exact: a power of two
    const stages: StageStats[] = this.#stages.map((st) => {
      const work = st.kind === "map" || st.kind === "filter";
      const workers: WorkerState[] = [];
      if (work) {
        for (let id = 0; id < st.nextId; id++) {
          const t = st.slotToken[id];
          workers.push(
            t
              ? {
                workerId: id,
                state: "busy",
                itemId: t.id,
                index: t.index,
                since: Number.isFinite(st.slotSince[id])
                  ? performance.timeOrigin + st.slotSince[id]
                  : undefined,
              }
              : { workerId: id, state: "idle" },
          );
        }
      }
      const empty = new Histogram().snapshot();
      return {
        name: st.name,
        kind: st.kind,
        concurrency: work ? st.concurrency : 0,
        queued: work
          ? st.queue.size
          : st.kind === "batch"
          ? st.items.length
          : 0,
        inFlight: work ? st.running - (st.limiter?.waiting ?? 0) : 0,
        busy: work ? st.running : 0,
        backingOff: st.backingOff,
        completed: st.completed,
        failed: st.failed,
        skipped: st.skipped,
        retried: st.retried,
        latency: work ? st.latency.snapshot() : empty,
        queueWait: work ? st.queueWait.snapshot() : empty,
        throughput: elapsedMs > 0 ? st.completed / (elapsedMs / 1000) : 0,
        workers,
      };
    });
    return {
      elapsedMs,
      itemsIn: this.#itemsIn,
      itemsOut: items(this.#outWeight),
      failed: items(this.#failedWeight),
      skipped: items(this.#skippedWeight),
      filtered: items(this.#filteredWeight),
      cancelled: items(this.#cancelledWeight),
      inFlight: items(this.#held),
      results: this.#results,
      running: stages.reduce((sum, st) => sum + st.inFlight, 0),
      done: this.#state === DONE,
      latency: this.#latency.snapshot(),
      stages,
    };
  }
}
