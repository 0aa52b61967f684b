// The scheduler: one run of a pipeline. ARCHITECTURE.md explains the model;
// the invariants it keeps are written next to the fields that hold them.
import { PipelineError } from "./errors.ts";
import type { StageSpec, TaskFn } from "./stage.ts";
import { Fifo } from "./_fifo.ts";
import { openSource, type SourceReader } from "./_source.ts";
import type { Source, TaskContext } from "./types.ts";

/** Options of one run, already validated by `Pipeline.run()`. */
export interface RunConfig {
  ordered: boolean;
  signal: AbortSignal | undefined;
  id: ((item: unknown, index: number) => unknown) | undefined;
  bufferSize: number;
  context: unknown;
}

/** A stage of a pipeline with its resolved name. */
export interface NamedSpec {
  spec: StageSpec;
  name: string;
}

/** Counters read by `Flow.stats()`. */
export interface EngineStats {
  startedAt: number;
  itemsIn: number;
  itemsOut: number;
  filtered: number;
  inFlight: number;
  done: boolean;
  stages: {
    name: string;
    kind: StageSpec["kind"];
    concurrency: number;
    queued: number;
    inFlight: number;
    completed: number;
  }[];
}

/**
 * One unit of work in flight: a source item, a batch, or an element of a
 * flattened item. Allocated once per item and reused as it moves on.
 */
class Token {
  value: unknown;
  /** Input position of the item (of the first item, for a batch). */
  readonly index: number;
  readonly id: unknown;
  /** The stage that holds it; `stages.length` once it is a result. */
  stage = 0;
  /**
   * How many source items this token stands for: 1 for a source item, the sum
   * of its members for a batch, an equal share of its parent for an element
   * of a flattened item. Returned to the read-ahead budget when it leaves.
   */
  weight: number;
  // Links of the order list (input order only).
  prev: Token | null = null;
  next: Token | null = null;

  constructor(value: unknown, index: number, id: unknown, weight: number) {
    this.value = value;
    this.index = index;
    this.id = id;
    this.weight = weight;
  }
}

interface WorkStage {
  readonly kind: "map" | "filter";
  readonly name: string;
  readonly fns: readonly TaskFn[];
  readonly concurrency: number;
  /** Invariant: running <= concurrency. */
  running: number;
  /** Tokens waiting for a worker; only non-empty while running === concurrency. */
  queue: Fifo<Token>;
  /** Worker ids free for reuse; ids in use are distinct and < concurrency. */
  freeIds: number[];
  nextId: number;
  completed: number;
}

interface BatchStage {
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
  completed: number;
}

interface FlattenStage {
  readonly kind: "flatten";
  readonly name: string;
  completed: number;
}

type RuntimeStage = WorkStage | BatchStage | FlattenStage;

interface Waiter {
  resolve(result: IteratorResult<unknown>): void;
  reject(reason: unknown): void;
}

const RUNNING = 0;
const STOPPING = 1;
const DONE = 2;
const EPSILON = 1e-9;
const DONE_RESULT: IteratorResult<never> = Object.freeze({
  done: true,
  value: undefined,
});

function makeStage(s: NamedSpec): RuntimeStage {
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
      completed: 0,
    };
  }
  if (spec.kind === "flatten") {
    return { kind: "flatten", name: s.name, completed: 0 };
  }
  return {
    kind: spec.kind,
    name: s.name,
    fns: spec.fns,
    concurrency: spec.concurrency,
    running: 0,
    queue: new Fifo<Token>(),
    freeIds: [],
    nextId: 0,
    completed: 0,
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
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal = this.#controller.signal;
  #reader: SourceReader<unknown> | null = null;
  #state = RUNNING;
  #started = false;

  // Budget: `held` (source items read and not yet out) never exceeds `limit`.
  readonly #limit: number;
  #held = 0;
  #sourceDone = false;
  #pulling = false;

  /** Tokens alive per stage; index n counts results not yet taken. */
  readonly #atStage: number[];
  #live = 0;
  /** Stage calls in flight; the run settles only once this is 0. */
  #running = 0;

  // Input order: the order list, from the oldest token (the next result) on.
  #head: Token | null = null;
  #tail: Token | null = null;
  readonly #batchStages: BatchStage[] = [];
  // Completion order: results not yet taken.
  readonly #results = new Fifo<Token>();

  #waiters: Waiter[] = [];
  #collector: unknown[] | null = null;
  #onCollected: ((failed: boolean, reason: unknown) => void) | null = null;
  #onSettled: (() => void)[] = [];
  #reason: unknown = undefined;
  #undelivered = false;
  #quiet = false;
  #closing: Promise<void> | undefined;

  readonly #startedAt = Date.now();
  #itemsIn = 0;
  #itemsOut = 0;
  #filtered = 0;

  constructor(
    specs: readonly NamedSpec[],
    source: Source<unknown>,
    config: RunConfig,
  ) {
    this.#stages = specs.map(makeStage);
    this.#n = specs.length;
    this.#config = config;
    this.#source = source;
    this.#limit = readAheadLimit(specs, config.bufferSize);
    this.#atStage = new Array(this.#n + 1).fill(0);
    for (const st of this.#stages) {
      if (st.kind === "batch") this.#batchStages.push(st);
    }
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
    this.#controller.abort(reason);
    for (const st of this.#batchStages) {
      if (st.timer !== undefined) clearTimeout(st.timer);
      st.timer = undefined;
    }
    for (const st of this.#stages) {
      if (st.kind === "map" || st.kind === "filter") {
        st.queue.clear();
      }
    }
    if (!this.#sourceDone) {
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
      const reader = this.#reader;
      if (reader !== null) {
        const closing = Promise.resolve()
          .then(() => reader.close(reason))
          .catch(() => {});
        // A pending pull of an iterator may never settle (an idle async
        // generator), and return() waits behind it: then it is not awaited.
        // A stream's cancel() ends a pending read, so it always is.
        if (!this.#pulling || reader.closeEndsPull) this.#closing = closing;
      }
    }
    this.#maybeSettle();
  }

  #maybeSettle(): void {
    if (this.#state !== STOPPING || this.#running > 0) return;
    if (this.#closing) {
      const closing = this.#closing;
      this.#closing = undefined;
      closing.then(() => this.#maybeSettle());
      return;
    }
    this.#finish();
  }

  #finish(): void {
    const failed = this.#state === STOPPING;
    this.#state = DONE;
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
      const failedHere = this.#undelivered;
      this.#undelivered = false;
      onCollected(failedHere, this.#reason);
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
        this.#live === 0 || this.#held + t.weight > this.#limit - 1 + EPSILON
      ) {
        this.#pump();
      }
      return Promise.resolve({ done: false, value: t.value });
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
    if (this.#state === DONE) {
      this.#onCollected = null;
      const failed = this.#undelivered;
      this.#undelivered = false;
      return onCollected(failed, this.#reason);
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
    let t: Token | null;
    if (this.#config.ordered) {
      t = this.#head;
      if (t === null || t.stage !== this.#n) return null;
      this.#unlink(t);
    } else {
      t = this.#results.shift() ?? null;
      if (t === null) return null;
    }
    this.#atStage[this.#n]--;
    this.#live--;
    this.#held -= t.weight;
    this.#itemsOut++;
    return t;
  }

  #deliver(): void {
    const collector = this.#collector;
    if (collector !== null) {
      for (let t = this.#take(); t !== null; t = this.#take()) {
        collector.push(t.value);
      }
      return;
    }
    while (this.#waiters.length > 0) {
      const t = this.#take();
      if (t === null) return;
      this.#waiters.shift()!.resolve({ done: false, value: t.value });
    }
  }

  // ---- the pump: read the source while the budget allows -----------------

  #pump(): void {
    if (this.#state !== RUNNING || !this.#started) return;
    const first = this.#stages[0];
    while (
      !this.#sourceDone && !this.#pulling &&
      this.#held <= this.#limit - 1 + EPSILON &&
      // Nothing waits for a worker of the first stage.
      (first === undefined || first.kind !== "map" && first.kind !== "filter" ||
        first.queue.size === 0)
    ) {
      let r;
      try {
        r = this.#reader!.pull();
      } catch (error) {
        this.#sourceDone = true; // a throwing source is finished
        return this.stop(error);
      }
      if (r instanceof Promise) {
        this.#pulling = true;
        r.then(this.#onPulled, this.#onPullError);
        return;
      }
      if (r.done) this.#sourceDone = true;
      else this.#admit(r.value);
      if (this.#state !== RUNNING) return;
    }
    this.#checkEnd();
  }

  #onPulled = (r: IteratorResult<unknown>): void => {
    this.#pulling = false;
    if (this.#state !== RUNNING) return;
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
    let id: unknown = index;
    if (this.#config.id !== undefined) {
      try {
        id = this.#config.id(value, index);
      } catch (error) {
        return this.stop(error);
      }
    }
    const t = new Token(value, index, id, 1);
    this.#held += 1;
    this.#live++;
    if (this.#config.ordered) this.#append(t);
    this.#enter(t, 0);
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
    this.#atStage[s]++;
    if (s === this.#n) {
      if (this.#config.ordered) {
        if (t === this.#head) this.#deliver();
      } else {
        this.#results.push(t);
        this.#deliver();
      }
      return;
    }
    const st = this.#stages[s];
    if (st.kind === "batch") {
      if (this.#config.ordered) this.#feedBatch(st, s);
      else this.#addToBatch(st, s, t);
    } else if (st.kind === "flatten") {
      this.#expand(st, s, t);
    } else if (st.running < st.concurrency) {
      this.#startTask(st, t);
    } else {
      st.queue.push(t);
    }
  }

  /** Moves `t` from its stage to the next one. */
  #forward(t: Token): void {
    this.#atStage[t.stage]--;
    this.#enter(t, t.stage + 1);
  }

  /** `t` leaves the run without a result (filtered out). */
  #drop(t: Token): void {
    this.#atStage[t.stage]--;
    this.#live--;
    this.#held -= t.weight;
    this.#filtered++;
    if (this.#config.ordered) {
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
    const workerId = st.freeIds.length > 0 ? st.freeIds.pop()! : st.nextId++;
    let result: unknown;
    try {
      result = this.#call(st, t, workerId);
    } catch (error) {
      result = Promise.reject(error);
    }
    // Always settle asynchronously: no re-entrance, no deep recursion.
    Promise.resolve(result).then(
      (value) => this.#taskDone(st, t, workerId, value),
      (error) => this.#taskFailed(st, t, workerId, error),
    );
  }

  /** Calls the stage function(s) on `t`; may throw synchronously. */
  #call(st: WorkStage, t: Token, workerId: number): unknown {
    const ctx: TaskContext = {
      signal: this.#signal,
      workerId,
      itemId: t.id,
      index: t.index,
      attempt: 1,
      stage: st.name,
      context: this.#config.context,
    };
    const fns = st.fns;
    return fns.length === 1
      ? fns[0](t.value, ctx)
      : runSequence(fns, t.value, ctx);
  }

  /** A call on `t` succeeded: its result moves on (or is filtered out). */
  #handOn(st: WorkStage, t: Token, value: unknown): void {
    st.completed++;
    if (st.kind === "filter") {
      if (value) this.#forward(t);
      else this.#drop(t);
    } else {
      t.value = value;
      this.#forward(t);
    }
  }

  #taskDone(st: WorkStage, t: Token, workerId: number, value: unknown): void {
    if (this.#state !== RUNNING) return this.#release(st, workerId);
    this.#handOn(st, t, value);
    const next = this.#state === RUNNING ? st.queue.shift() : undefined;
    // Work is waiting: the worker keeps its slot and goes on in a loop, which
    // costs less per item than a fresh start (no closures, no derived promise).
    if (next !== undefined) this.#loop(st, next, workerId);
    else this.#release(st, workerId);
    this.#pump();
  }

  /** A worker that keeps taking the queued tokens of its stage. Never rejects. */
  async #loop(st: WorkStage, t: Token, workerId: number): Promise<void> {
    for (;;) {
      let value: unknown;
      try {
        value = await this.#call(st, t, workerId);
      } catch (error) {
        await undefined; // a synchronous throw still settles asynchronously
        return this.#taskFailed(st, t, workerId, error);
      }
      if (this.#state !== RUNNING) return this.#release(st, workerId);
      this.#handOn(st, t, value);
      const next = this.#state === RUNNING ? st.queue.shift() : undefined;
      if (next === undefined) this.#release(st, workerId);
      this.#pump();
      if (next === undefined) return;
      t = next;
    }
  }

  #taskFailed(st: WorkStage, t: Token, workerId: number, error: unknown): void {
    if (this.#state === RUNNING) {
      this.stop(new PipelineError(st.name, t.id, t.index, t.value, error));
    }
    this.#release(st, workerId);
  }

  /** Frees a worker slot; once stopping, the last one settles the run. */
  #release(st: WorkStage, workerId: number): void {
    st.running--;
    this.#running--;
    st.freeIds.push(workerId);
    if (this.#state !== RUNNING) this.#maybeSettle();
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
      st.items.push(t.value);
      if (st.maxWaitMs !== undefined) {
        st.timer = setTimeout(() => this.#onBatchTimer(st, s), st.maxWaitMs);
      }
    } else {
      st.items.push(t.value);
      carrier.weight += t.weight;
      this.#atStage[s]--;
      this.#live--;
      if (this.#config.ordered) this.#unlink(t);
    }
    if (
      st.items.length >= st.maxSize || (st.due && st.items.length >= st.minSize)
    ) {
      this.#flush(st, s);
    }
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
    st.items = [];
    st.carrier = null;
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
    const share = t.weight / count;
    this.#atStage[s] += count - 1;
    this.#live += count - 1;
    const children: Token[] = [t];
    t.value = elements[0];
    t.weight = share;
    let after = t;
    for (let i = 1; i < count; i++) {
      const child = new Token(elements[i], t.index, t.id, share);
      child.stage = s;
      if (this.#config.ordered) this.#insertAfter(after, child);
      after = child;
      children.push(child);
    }
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

  stats(): EngineStats {
    return {
      startedAt: this.#startedAt,
      itemsIn: this.#itemsIn,
      itemsOut: this.#itemsOut,
      filtered: this.#filtered,
      inFlight: this.#running,
      done: this.#state === DONE,
      stages: this.#stages.map((st) => {
        const work = st.kind === "map" || st.kind === "filter";
        return {
          name: st.name,
          kind: st.kind,
          concurrency: work ? st.concurrency : 0,
          queued: work
            ? st.queue.size
            : st.kind === "batch"
            ? st.items.length
            : 0,
          inFlight: work ? st.running : 0,
          completed: st.completed,
        };
      }),
    };
  }
}
