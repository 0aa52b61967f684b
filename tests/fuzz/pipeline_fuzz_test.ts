// Randomized fault injection for pipelines (plans and values:
// _pipeline_gen.ts).
//
// Generated: a pipeline of 0..5 stages: maps (1..3 functions: a multi-task
// stage), fan-out maps (a leaf becomes an array of 0..3 elements), reshaping
// maps (an array of leaves becomes one of another length), filters, batches
// (maxSize 1..5, maxWaitMs none or 0..10, minSize) and flattens (after a
// batch, a fan-out or a reshape); map and filter stages with concurrency 1..4
// or Infinity, retry (attempts 1..3, delayMs 0..5, jitter on/off, scope task
// or stage, a retryIf refusing "fatal" errors or none), timeoutMs 5..30 and
// onError "fail", "skip" or a sync or async handler answering "skip", "fail",
// { value } or throwing. Every call does, chosen from the item and the
// attempt: return synchronously, return after a microtask, return after a
// real sleep of 0..5 ms, throw synchronously, reject late, hang until
// ctx.signal aborts (only where a timeout or a timed stop ends it), fail its
// first attempts (flaky), or throw a "fatal" error. The run: input or
// completion order, bufferSize 0..8 or the default, ids or not, sometimes a
// "progress" listener; a source of 0..30 items (an array, a sync generator,
// an async generator, a ReadableStream, an async iterator whose next()
// returns a plain thenable), which may throw at an item, and whose cleanup
// (return() / cancel()) is immediate, slow or never finishes; a consumer
// (for await to the end or to a break, the same with two next() calls always
// pending, collect(), readable read to the end or cancelled; sometimes
// sleeping 0..3 ms after each result); and a stop:
// none, flow.abort() or the run's signal, before the run, after a real
// sleep, after k results, inside the k-th entry into the run's code (a stage
// call, an onError handler, a source read) or the k-th event listener.
//
// The oracle checks, for every run (each failure names its check):
//  1. the consumer ends and the flow settles (no hang), and the flow is
//     settled (stats().done) once the consumer has seen the end;
//  2. itemsIn === itemsOut + skipped + filtered + cancelled + inFlight at
//     every observation (stage calls, events, results) and at settle, with
//     inFlight 0 then; itemsIn equals what the source produced (a read
//     pending at the stop included: re-checked once the source is idle);
//  3. after a stop no read issued after it yields a value, next() rejects
//     once and is then done; results and itemsOut are exactly what the
//     consumer received (0 for a rejected collect());
//  4. results: well-formed, every map stage ran once on each (trails), no
//     duplicates, none that was filtered or skipped; in input order exactly
//     a prefix of the expected results; all of them when the run completed;
//  5. no stage call (or onError handler) running at settle, none starting
//     after; never more than `concurrency` calls, distinct workerIds;
//  6. no library timer alive at settle (TimerWatch);
//  7. events match stats() per stage (completed, failed, retried, skipped,
//     and "started" per attempt, less one whose "started" listener stopped
//     the run); skipped matches flow.failures; ctx.attempt within
//     retry.attempts; a final "progress" event with done: true;
//  8. inFlight <= bufferSize + Σ concurrency × w + Σ batch maxSize × w at
//     every observation, w the product of earlier batches' maxSize
//     (ARCHITECTURE "Read-ahead budget"; concurrency Infinity adds nothing,
//     README "Decisions"; bufferSize defaults to 1024);
//  9. the run's error is one it may have: the abort reason, the source's
//     error, or a PipelineError whose stage, index, itemId, item and cause
//     are those of a call (or handler) seen failing for good; a run with a
//     final failure under onError "fail" does not complete; every
//     flow.failures record names its item's stage, index, id, a stage
//     function's error and at most retry.attempts attempts;
// 10. ctx.index and ctx.itemId of every call and handler: the item's input
//     position (a batch: its first item's; an element of a flattened batch
//     of unchanged length: its own member's; an element of a fan-out, or of
//     a batch a map changed the length of: its parent's);
// 11. the source's return() / cancel() is called when the run stops before
//     the source ended, and the run settles even if it never finishes;
// 12. a source whose next() returns a non-native thenable is read correctly.
import {
  batch,
  filter,
  flatten,
  type Flow,
  type FlowStats,
  map,
  type MapOptions,
  Pipeline,
  PipelineError,
  type Stage,
  type TaskContext,
  TimeoutError,
} from "../../mod.ts";
import {
  check,
  enabled,
  fuzz,
  realClearTimeout,
  realSetTimeout,
  realSleep,
  settlesWithin,
  TimerWatch,
} from "./_fuzz.ts";
import {
  compareKeys,
  depths,
  fanOut,
  FAULTS,
  hash,
  indexOf,
  keyOf,
  keysOfItem,
  type Leaf,
  leaf,
  leavesOf,
  marks,
  mayHang,
  pick,
  reshape,
  type RunPlan,
  runPlanArb,
  seededRandom,
  showVal,
  tag,
  trailIsComplete,
  UNIT,
  type Val,
  verdict,
  weightOf,
  weightsFollowValues,
  wellFormed,
  type WorkPlan,
} from "./_pipeline_gen.ts";

const RUNS = 2800;
const SETTLE_MS = 5000;
const DEFAULT_BUFFER_SIZE = 1024; // README: `bufferSize` defaults to 1024
const EVENTS = ["started", "completed", "retrying", "failed", "skipped"];

/** The errors stage functions and sources throw. */
class FuzzError extends Error {
  constructor(message: string, readonly fatal = false) {
    super(message);
  }
}

/** What the source did, counted by the source itself. */
interface SourceState {
  /** Values it returned (a value handed to a read, even a late one). */
  produced: number;
  /** Reads not settled yet. */
  pending: number;
  /** It returned done or threw. */
  ended: boolean;
  /** A generator's body ran (else return() has nothing to clean up). */
  started: boolean;
  /** return() / cancel() was called (seen by the source). */
  cleanedUp: boolean;
  /** The error it threw, if any. */
  error: FuzzError | undefined;
}

/** A final failure seen by a stage function or an onError handler. */
interface FinalFailure {
  s: number;
  index: number;
  itemId: unknown;
  /** The stage's input (handlers see it; functions: looked up in `inputs`). */
  item: Val | undefined;
  cause: unknown;
}

interface Outcome {
  received: Val[];
  /** The consumer saw the normal end. */
  completed: boolean;
  rejected: boolean;
  reason: unknown;
  /** The consumer left early (break, cancel). */
  left: boolean;
}

// ---- one run: its state and the checks made while it runs -----------------

class Run {
  readonly plan: RunPlan;
  readonly depth: number[];
  readonly limit: number;
  readonly violations: string[] = [];
  names: readonly string[] = [];
  flow!: Flow<unknown>;
  readonly source: SourceState = {
    produced: 0,
    pending: 0,
    ended: false,
    started: false,
    cleanedUp: false,
    error: undefined,
  };
  readonly controller = new AbortController();
  /** A stop the consumer can see was issued (abort, signal, "fail"). */
  stopped = false;
  triggered = false;
  abortPromise: Promise<void> | undefined;
  abortReason: unknown;
  settled = false;
  /** Entries into the run's user code: stage calls, handlers, source reads. */
  entries = 0;
  readonly active: number[];
  readonly workerIds: Set<number>[];
  handlers = 0;
  /** Per stage: calls of its first function, and of all its functions. */
  readonly firstCalls: number[];
  readonly allCalls: number[];
  readonly events = new Map<string, Record<string, number>>();
  eventCount = 0;
  unstarted = "";
  progressDone = false;
  readonly finals: FinalFailure[] = [];
  /** First functions' inputs, by `stage|index|itemId`. */
  readonly inputs = new Map<string, Val[]>();
  /** Keys of leaves that were filtered out (or skipped: added at the end). */
  readonly lost = new Set<string>();
  received: Val[] = [];

  constructor(plan: RunPlan) {
    this.plan = plan;
    this.depth = depths(plan.stages);
    const n = plan.stages.length;
    this.active = new Array(n).fill(0);
    this.workerIds = Array.from({ length: n }, () => new Set<number>());
    this.firstCalls = new Array(n).fill(0);
    this.allCalls = new Array(n).fill(0);
    // README "Backpressure and memory" and ARCHITECTURE "Read-ahead budget".
    let limit = plan.bufferSize ?? DEFAULT_BUFFER_SIZE;
    let w = 1;
    for (const st of plan.stages) {
      if (st.kind === "batch") {
        limit += st.maxSize * w;
        w *= st.maxSize;
      } else if (st.kind !== "flatten" && st.concurrency !== Infinity) {
        limit += st.concurrency * w;
      }
    }
    // The run must be able to hold one item (ARCHITECTURE: "pulled only
    // while held + 1 <= limit").
    this.limit = Math.max(limit, 1);
  }

  violate(n: number, message: string, detail?: unknown): void {
    if (this.violations.length >= 8) return;
    const text = detail === undefined ? "" : `: ${JSON.stringify(detail)}`;
    this.violations.push(`check ${n}: ${message}${text}`);
  }

  idOf(index: number): unknown {
    return this.plan.useId ? `id:${index}` : index;
  }

  /** Checks the counters at one moment of the run (2, 8). */
  observe(where: string): FlowStats {
    const s = this.flow.stats();
    const sum = s.itemsOut + s.skipped + s.filtered + s.cancelled + s.inFlight;
    if (s.itemsIn !== sum) { // exact: shares are whole units of 2^-20
      this.violate(2, `itemsIn is not accounted for at ${where}`, counts(s));
    }
    if (s.inFlight > this.limit) {
      this.violate(8, `inFlight over the read-ahead bound at ${where}`, {
        inFlight: s.inFlight,
        limit: this.limit,
      });
    }
    if (s.itemsIn > this.source.produced) {
      this.violate(2, `itemsIn over what the source produced at ${where}`, {
        itemsIn: s.itemsIn,
        produced: this.source.produced,
      });
    }
    return s;
  }

  /** User code runs: the stop of a "call" plan may come from inside it. */
  enter(): void {
    const { when, at } = this.plan.stop;
    if (when === "call" && ++this.entries === at) this.trigger();
  }

  /** The stop of the plan: flow.abort() or the run's signal. */
  trigger(): void {
    if (this.triggered || this.plan.stop.kind === "none") return;
    this.triggered = true;
    this.stopped = true;
    const reason = this.plan.stop.reason ? new FuzzError("stop") : undefined;
    if (this.plan.stop.kind === "abort") {
      this.abortReason = reason;
      this.abortPromise = this.flow.abort(reason);
    } else this.controller.abort(reason);
  }

  /** Whether `e` is a reason the run may reject with (9). */
  reasonIsValid(e: unknown): boolean {
    if (this.triggered) {
      if (this.plan.stop.kind === "abort") {
        if (this.abortReason !== undefined && e === this.abortReason) {
          return true;
        }
        if (
          this.abortReason === undefined && e instanceof DOMException &&
          e.name === "AbortError"
        ) return true;
      } else if (e === this.controller.signal.reason) return true;
    }
    if (this.source.error !== undefined && e === this.source.error) {
      return true;
    }
    if (e instanceof PipelineError) {
      const ok = this.finals.some((f) => this.matches(f, e));
      if (!ok) {
        this.violate(9, "a PipelineError that matches no final failure", {
          stage: e.stage,
          index: e.index,
          itemId: e.itemId,
          item: safeShow(e.item),
          cause: String(e.cause),
          finals: this.finals.map((f) => ({
            stage: this.names[f.s],
            index: f.index,
            itemId: f.itemId,
            cause: String(f.cause),
          })),
        });
      }
      return true; // reported above
    }
    return false;
  }

  matches(f: FinalFailure, e: PipelineError): boolean {
    if (
      this.names[f.s] !== e.stage || f.index !== e.index ||
      f.itemId !== e.itemId || f.cause !== e.cause
    ) return false;
    const shown = safeShow(e.item);
    const items = f.item !== undefined
      ? [f.item]
      : this.inputs.get(`${f.s}|${f.index}|${String(f.itemId)}`) ?? [];
    return items.some((x) => showVal(x) === shown);
  }

  // ---- stage calls ---------------------------------------------------------

  /** A call begins: checks 5, 8, 10 and the call's own bounds. */
  callStarted(s: number, f: number, value: unknown, ctx: TaskContext): boolean {
    const st = this.plan.stages[s] as WorkPlan;
    const name = this.names[s];
    if (this.settled) this.violate(5, `a call of ${name} after settle`);
    this.allCalls[s]++;
    if (f === 0) this.firstCalls[s]++;
    this.active[s]++;
    if (this.active[s] > st.concurrency) {
      this.violate(5, `${name} runs more than ${st.concurrency} calls`);
    }
    const id = ctx.workerId;
    if (
      this.workerIds[s].has(id) || !Number.isInteger(id) || id < 0 ||
      id >= st.concurrency
    ) {
      this.violate(5, `${name}: workerId ${id} taken or out of range`);
    }
    this.workerIds[s].add(id);
    const attempts = st.retry?.attempts ?? 1;
    if (!(ctx.attempt >= 1 && ctx.attempt <= attempts)) {
      this.violate(7, `${name}: ctx.attempt ${ctx.attempt} of ${attempts}`);
    }
    if (ctx.stage !== name) {
      this.violate(7, `ctx.stage ${ctx.stage} in ${name}`);
    }
    this.observe(`a call of ${name}`);
    this.enter();
    if (!wellFormed(value, this.depth[s])) {
      this.violate(4, `${name} received a malformed value`, safeShow(value));
      return false;
    }
    const v = value as Val;
    const index = indexOf(v);
    if (ctx.index !== index || ctx.itemId !== this.idOf(index)) {
      this.violate(10, `${name}: ctx.index/itemId of ${keyOf(v)}`, {
        index: ctx.index,
        itemId: ctx.itemId,
        expected: [index, this.idOf(index)],
      });
    }
    if (f === 0) {
      const key = `${s}|${ctx.index}|${String(ctx.itemId)}`;
      const list = this.inputs.get(key);
      if (list === undefined) this.inputs.set(key, [v]);
      else list.push(v);
    }
    return true;
  }

  /** A call ended (returned, threw, or its promise settled). */
  callEnded(
    s: number,
    value: Val,
    ctx: TaskContext,
    error: unknown,
    out: unknown,
  ): void {
    const st = this.plan.stages[s] as WorkPlan;
    this.active[s]--;
    this.workerIds[s].delete(ctx.workerId);
    // README: "Its outcome is the timeout even if it returns a value".
    const reason = ctx.signal.reason;
    if (st.timeoutMs !== undefined && reason instanceof TimeoutError) {
      error = reason;
    }
    if (error === undefined) {
      if (st.kind === "filter" && !out) this.lose(value);
      return;
    }
    const fatal = error instanceof FuzzError && error.fatal;
    const final = ctx.attempt >= (st.retry?.attempts ?? 1) ||
      (st.retry?.retryIf === true && fatal);
    if (final && st.onError === "fail") {
      this.finals.push({
        s,
        index: ctx.index,
        itemId: ctx.itemId,
        item: undefined,
        cause: error,
      });
    }
  }

  lose(v: Val): void {
    for (const l of leavesOf(v)) this.lost.add(l.k.join("."));
  }

  // ---- events and results ----------------------------------------------------

  onEvent(type: string, detail: { stage: string }): void {
    if (this.settled) this.violate(7, `a "${type}" event after settle`);
    let counts = this.events.get(detail.stage);
    if (counts === undefined) {
      counts = Object.fromEntries(EVENTS.map((t) => [t, 0]));
      this.events.set(detail.stage, counts);
    }
    counts[type]++;
    const s = this.names.indexOf(detail.stage);
    const st = this.plan.stages[s];
    if (st === undefined || st.kind === "batch" || st.kind === "flatten") {
      this.violate(7, `a "${type}" event of stage ${detail.stage}`);
    } else if (type === "failed" && st.onError === "fail") {
      this.stopped = true; // the run stops right after this event
    }
    this.observe(`a "${type}" event`);
    const { when, at } = this.plan.stop;
    if (when === "event" && ++this.eventCount === at) {
      this.trigger();
      // The attempt whose "started" listener stopped the run does not run.
      if (type === "started") this.unstarted = detail.stage;
    }
  }

  /** The consumer got `value` from a read issued after a stop or not. */
  receive(value: unknown, afterStop: boolean): void {
    if (afterStop) {
      this.violate(
        3,
        "a read issued after the stop yielded a value",
        safeShow(value),
      );
    }
    this.received.push(value as Val);
    this.observe("a result");
  }
}

function counts(s: FlowStats) {
  const { itemsIn, itemsOut, skipped, filtered, cancelled, inFlight, results } =
    s;
  return { itemsIn, itemsOut, skipped, filtered, cancelled, inFlight, results };
}

function safeShow(v: unknown): string {
  try {
    return showVal(v as Val);
  } catch {
    return String(v);
  }
}

// ---- stage functions ----------------------------------------------------------

/** Function `f` of work stage `s`: computes its value, with the plan's fault. */
function stageFn(run: Run, s: number, f: number) {
  const st = run.plan.stages[s] as WorkPlan;
  const seed = run.plan.seed;
  const compute = (v: Val): unknown =>
    st.kind === "filter"
      ? verdict(seed, s, st.keepPct, v)
      : st.kind === "fan"
      ? fanOut(seed, s, v as Leaf, `${s}f`)
      : st.kind === "reshape"
      ? reshape(seed, s, v as Val[], `${s}r`)
      : tag(v, marks(s, st.fns)[f]);
  return (value: unknown, ctx: TaskContext): unknown => {
    if (!run.callStarted(s, f, value, ctx)) {
      run.callEnded(s, [], ctx, undefined, true);
      return value;
    }
    const v = value as Val;
    const key = keyOf(v);
    const h = hash(seed, s, f, key, ctx.attempt);
    let fault = FAULTS[pick(st.faults, h)];
    if (fault === "hang" && !mayHang(run.plan, st)) fault = "slow";
    if (fault === "flaky") {
      fault = ctx.attempt <= 1 + hash(seed, s, f, key) % 2 ? "throw" : "ok";
    }
    const ms = (h >>> 12) % 6;
    const error = new FuzzError(`${fault} ${key}`, fault === "fatal");
    const track = (p: Promise<unknown>) =>
      p.then((out) => {
        run.callEnded(s, v, ctx, undefined, out);
        return out;
      }, (e) => {
        run.callEnded(s, v, ctx, e, undefined);
        throw e;
      });
    switch (fault) {
      case "ok": {
        const out = compute(v);
        run.callEnded(s, v, ctx, undefined, out);
        return out;
      }
      case "throw":
      case "fatal":
        run.callEnded(s, v, ctx, error, undefined);
        throw error;
      case "micro":
        return track(Promise.resolve().then(() => compute(v)));
      case "slow": // half of them leave early when ctx.signal aborts
        return track(
          realSleep(ms, h & 1 ? ctx.signal : undefined).then(() => compute(v)),
        );
      case "reject":
        return track(realSleep(ms % 4).then(() => Promise.reject(error)));
      default: // hang: until ctx.signal aborts, then return or reject
        return track(
          new Promise((resolve, reject) => {
            const end = () =>
              h & 1 ? resolve(compute(v)) : reject(ctx.signal.reason);
            if (ctx.signal.aborted) end();
            else ctx.signal.addEventListener("abort", end, { once: true });
          }),
        );
    }
  };
}

/** An onError handler: "skip", "fail", a substitute, or a throw, per item. */
function handlerFn(run: Run, s: number, async: boolean) {
  const st = run.plan.stages[s] as WorkPlan;
  const seed = run.plan.seed;
  return (error: unknown, item: unknown, ctx: TaskContext) => {
    const name = run.names[s];
    if (run.settled) {
      run.violate(5, `an onError handler of ${name} after settle`);
    }
    run.handlers++;
    run.enter();
    const v = item as Val;
    if (!wellFormed(item, run.depth[s])) {
      run.violate(4, `the onError handler of ${name} got a malformed item`);
    } else if (
      ctx.index !== indexOf(v) || ctx.itemId !== run.idOf(indexOf(v))
    ) {
      run.violate(10, `${name}'s handler: ctx.index/itemId of ${keyOf(v)}`, {
        index: ctx.index,
        itemId: ctx.itemId,
      });
    }
    const h = hash(seed, s, "onError", safeShow(item));
    const decide = () => {
      run.handlers--;
      const choice = ["skip", "fail", "value", "throw"][h % 4];
      if (choice === "skip") return "skip" as const;
      if (choice === "value") {
        const value = st.kind === "filter"
          ? verdict(seed, s, st.keepPct, v)
          : st.kind === "fan"
          ? fanOut(seed, s, v as Leaf, `${s}!`)
          : st.kind === "reshape"
          ? reshape(seed, s, v as Val[], `${s}!`)
          : tag(v, `${s}!`);
        if (st.kind === "filter" && !value) run.lose(v);
        return { value };
      }
      const thrown = new FuzzError(`handler ${keyOf(v)}`);
      run.finals.push({
        s,
        index: ctx.index,
        itemId: ctx.itemId,
        item: v,
        cause: choice === "fail" ? error : thrown,
      });
      if (choice === "fail") return "fail" as const;
      throw thrown;
    };
    if (!async) return decide();
    return ((h >>> 4) & 1 ? realSleep((h >>> 5) % 3) : Promise.resolve())
      .then(decide);
  };
}

/** A deterministic small hash of a stage's input (for `key`). */
function hashOf(v: unknown): number {
  const text = JSON.stringify(v) ?? "";
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return h >>> 0;
}

function buildStages(run: Run): Stage<never, unknown>[] {
  return run.plan.stages.map((st, s): Stage<never, unknown> => {
    if (st.kind === "batch") {
      return batch({
        maxSize: st.maxSize,
        maxWaitMs: st.maxWaitMs,
        minSize: st.minSize,
      }) as Stage<never, unknown>;
    }
    if (st.kind === "flatten") return flatten() as Stage<never, unknown>;
    const options: MapOptions = {
      concurrency: st.concurrency,
      timeoutMs: st.timeoutMs,
      onError: st.onError === "fail" || st.onError === "skip"
        ? st.onError
        : handlerFn(run, s, st.onError === "asyncHandler"),
    };
    if (st.adaptive && st.concurrency !== Infinity) {
      // The limit moves within [1, concurrency]: the checks' bound holds.
      options.concurrency = {
        adaptive: { min: 1, max: st.concurrency, initial: st.concurrency },
      };
    }
    if (st.keyMod !== undefined) {
      const mod = st.keyMod;
      options.key = (v) => hashOf(v) % mod;
    }
    if (st.retry !== undefined) {
      options.retry = {
        attempts: st.retry.attempts,
        delayMs: st.retry.delayMs,
        jitter: st.retry.jitter,
        scope: st.retry.scope,
        random: seededRandom(run.plan.seed + s),
        retryIf: st.retry.retryIf
          ? (e) => !(e instanceof FuzzError && e.fatal)
          : undefined,
      };
    }
    if (st.kind === "filter") {
      return filter(stageFn(run, s, 0), options) as Stage<never, unknown>;
    }
    const fns = Array.from({ length: st.fns }, (_, f) => stageFn(run, s, f));
    return (fns.length === 1
      ? map(fns[0], options)
      : map(fns, options)) as Stage<
        never,
        unknown
      >;
  });
}

// ---- sources --------------------------------------------------------------------

/** A source's own pace per read: at once, a microtask, or 0..3 ms. */
function pace(run: Run, i: number): Promise<void> {
  const h = hash(run.plan.seed, "pace", i);
  if (h % 3 === 0) return Promise.resolve();
  if (h % 3 === 1) return Promise.resolve().then(() => {});
  return realSleep((h >>> 4) % 4);
}

function cleanup(run: Run): Promise<void> {
  const kind = run.plan.source.cleanup;
  if (kind === "fast") return Promise.resolve();
  if (kind === "slow") return realSleep(1 + hash(run.plan.seed, "cleanup") % 5);
  return new Promise(() => {}); // never finishes
}

function makeSource(run: Run): unknown {
  const { kind, n, throwAt } = run.plan.source;
  const state = run.source;
  const fail = () => {
    state.ended = true;
    state.error = new FuzzError(`source throws at ${throwAt}`);
    return state.error;
  };
  if (kind === "array") {
    const items = Array.from({ length: n }, (_, i) => leaf(i));
    const read = new Set<number>();
    return new Proxy(items, {
      get(target, prop, receiver) {
        if (typeof prop === "string" && /^\d+$/.test(prop) && +prop < n) {
          read.add(+prop);
          state.produced = read.size;
        }
        return Reflect.get(target, prop, receiver);
      },
    });
  }
  if (kind === "sync") {
    return (function* () {
      state.started = true;
      try {
        for (let i = 0;; i++) {
          run.enter();
          if (i === throwAt) throw fail();
          if (i >= n) break;
          state.produced++;
          yield leaf(i);
        }
        state.ended = true;
      } finally {
        if (!state.ended) state.cleanedUp = true;
      }
    })();
  }
  if (kind === "async") {
    return (async function* () {
      state.started = true;
      try {
        for (let i = 0;; i++) {
          run.enter();
          state.pending++;
          await pace(run, i);
          state.pending--;
          if (i === throwAt) throw fail();
          if (i >= n) break;
          state.produced++;
          yield leaf(i);
        }
        state.ended = true;
      } finally {
        if (!state.ended) {
          state.cleanedUp = true;
          await cleanup(run);
        }
      }
    })();
  }
  if (kind === "stream") {
    let i = 0;
    let cancelled = false;
    return new ReadableStream({
      async pull(controller) {
        run.enter();
        state.pending++;
        await pace(run, i);
        state.pending--;
        if (cancelled) return;
        if (i === throwAt) controller.error(fail());
        else if (i >= n) {
          state.ended = true;
          controller.close();
        } else {
          controller.enqueue(leaf(i++));
          state.produced++;
        }
      },
      cancel() {
        cancelled = true;
        state.cleanedUp = true;
        return cleanup(run);
      },
    }, { highWaterMark: 0 });
  }
  // An async iterator whose next() answers with a plain thenable.
  let i = 0;
  const iterator = {
    next() {
      if (i > n + 1) {
        run.violate(12, "the source was read past its end");
        throw new FuzzError("read past the end");
      }
      const at = i++;
      run.enter();
      state.pending++;
      const p = pace(run, at).then(() => {
        state.pending--;
        if (at === throwAt) throw fail();
        if (at >= n) {
          state.ended = true;
          return { done: true as const, value: undefined };
        }
        state.produced++;
        return { done: false as const, value: leaf(at) };
      });
      p.catch(() => {}); // a reader that never calls then() is checked elsewhere
      return {
        then(
          resolve: (r: IteratorResult<Leaf>) => unknown,
          reject: (e: unknown) => unknown,
        ) {
          p.then(resolve, reject);
        },
      };
    },
    return() {
      state.cleanedUp = true;
      return cleanup(run).then(() => ({
        done: true as const,
        value: undefined,
      }));
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

// ---- consumers ------------------------------------------------------------------

async function consume(run: Run, flow: Flow<unknown>): Promise<Outcome> {
  const out: Outcome = {
    received: [],
    completed: false,
    rejected: false,
    reason: undefined,
    left: false,
  };
  const kind = run.plan.consumer.kind;
  if (kind === "collect") await consumeCollect(run, flow, out);
  else if (kind === "iterate") await consumeIterator(run, flow, out);
  else if (kind === "iterate2") await consumeTwoReads(run, flow, out);
  else await consumeReadable(run, flow, out);
  out.received = run.received;
  return out;
}

/** After each result: the "result" stop, the consumer's own pace. */
async function afterResult(run: Run): Promise<void> {
  const { when, at } = run.plan.stop;
  if (when === "result" && run.received.length === at) run.trigger();
  const delay = run.plan.consumer.readDelay;
  if (delay !== undefined) await realSleep(delay);
}

/** Whether the run may have stopped unseen by the consumer (it leaves now). */
function mayHaveStopped(run: Run): boolean {
  return run.stopped || run.source.error !== undefined || run.finals.length > 0;
}

async function consumeCollect(run: Run, flow: Flow<unknown>, out: Outcome) {
  try {
    const values = await flow.collect();
    out.completed = true;
    for (const v of values) run.receive(v, false);
  } catch (e) {
    out.rejected = true;
    out.reason = e;
  }
}

/** A for await loop (written out, to call next() once it has ended). */
async function consumeIterator(run: Run, flow: Flow<unknown>, out: Outcome) {
  const it = flow[Symbol.asyncIterator]();
  let stoppedFirst = false;
  for (;;) {
    if (run.plan.consumer.leaveAt === run.received.length) {
      stoppedFirst = mayHaveStopped(run);
      const r = await it.return!();
      if (!r.done) run.violate(3, "return() of the iterator was not done");
      out.left = true;
      break;
    }
    if (!await readOne(run, out, () => it.next())) break;
  }
  if (out.rejected || out.left) await nextIsDone(run, it, stoppedFirst);
}

/**
 * README: after a stop next() rejects once with the reason, then is done;
 * leaving ends quietly (but a stop it had not seen yet may reject once).
 */
async function nextIsDone(
  run: Run,
  it: AsyncIterator<unknown>,
  mayReject: boolean,
): Promise<void> {
  for (let k = 0; k < 2; k++) {
    const r = await it.next().catch((e) => ({ error: e }));
    if ("error" in r && k === 0 && mayReject) {
      if (!run.reasonIsValid(r.error)) {
        run.violate(9, "next() after leaving rejected", String(r.error));
      }
      continue;
    }
    if (!("done" in r) || !r.done) {
      const got = "error" in r ? `error ${r.error}` : safeShow(r.value);
      run.violate(3, "next() after the end was not done", got);
    }
  }
}

/**
 * Two next() calls always pending: they settle in call order, and once one
 * rejects or is done, none yields a value.
 */
async function consumeTwoReads(run: Run, flow: Flow<unknown>, out: Outcome) {
  const it = flow[Symbol.asyncIterator]();
  type Read = {
    afterStop: boolean;
    p: Promise<{ r?: IteratorResult<unknown>; e?: unknown }>;
  };
  const reads: Read[] = [];
  const read = () =>
    reads.push({
      afterStop: run.stopped,
      p: it.next().then((r) => ({ r }), (e) => ({ e })),
    });
  read();
  read();
  let stoppedFirst = false;
  while (reads.length > 0) {
    const { afterStop, p } = reads.shift()!;
    const { r, e } = await p;
    const ended = out.rejected || out.completed;
    if (r === undefined && out.left) {
      // A read pending when it left: the stop it had not seen, once.
      if (!stoppedFirst || !run.reasonIsValid(e)) {
        run.violate(3, "a read pending when leaving rejected", String(e));
      }
      stoppedFirst = false;
    } else if (r === undefined) {
      if (ended) run.violate(3, "a second rejection", String(e));
      out.rejected = true;
      out.reason = e;
    } else if (r.done) {
      if (!ended) out.completed = true;
    } else if (ended) {
      run.violate(3, "a value after the end", safeShow(r.value));
    } else if (out.left) {
      run.receive(r.value, afterStop); // read before leaving, answered then
    } else {
      run.receive(r.value, afterStop);
      await afterResult(run);
      if (run.plan.consumer.leaveAt === run.received.length) {
        stoppedFirst = mayHaveStopped(run);
        await it.return!();
        out.left = true;
      } else read();
    }
  }
  if (out.left) out.completed = false;
  if (out.rejected || out.left) await nextIsDone(run, it, stoppedFirst);
}

async function consumeReadable(run: Run, flow: Flow<unknown>, out: Outcome) {
  const reader = flow.readable.getReader();
  for (;;) {
    if (run.plan.consumer.leaveAt === run.received.length) {
      await reader.cancel();
      out.left = true;
      const r = await reader.read().catch((e) => ({ error: e }));
      if (!("done" in r) || !r.done) {
        run.violate(3, "read() after cancel() was not done");
      }
      break;
    }
    if (!await readOne(run, out, () => reader.read())) break;
  }
}

/**
 * Reads one result and records it (or the end, or the rejection) in `out`;
 * false once the loop is over.
 */
async function readOne(
  run: Run,
  out: Outcome,
  read: () => Promise<{ done?: boolean; value?: unknown }>,
): Promise<boolean> {
  const afterStop = run.stopped;
  let r;
  try {
    r = await read();
  } catch (e) {
    out.rejected = true;
    out.reason = e;
    return false;
  }
  if (r.done) {
    out.completed = true;
    return false;
  }
  run.receive(r.value, afterStop);
  await afterResult(run);
  return true;
}

// ---- the run and the checks at its end -------------------------------------------

async function runPlan(plan: RunPlan): Promise<void> {
  const run = new Run(plan);
  const watch = new TimerWatch();
  watch.install();
  try {
    await execute(run, watch);
  } finally {
    watch.uninstall();
  }
  if (run.violations.length > 0) {
    check(false, run.violations.join("\n  "));
  }
}

async function execute(run: Run, watch: TimerWatch): Promise<void> {
  const plan = run.plan;
  const pipeline = new Pipeline<unknown, unknown>(buildStages(run));
  run.names = pipeline.names;
  const source = makeSource(run);
  if (plan.stop.kind === "signal" && plan.stop.when === "before") run.trigger();
  const flow = pipeline.run(source as Iterable<unknown>, {
    order: plan.order,
    bufferSize: plan.bufferSize,
    id: plan.useId ? (_item, index) => `id:${index}` : undefined,
    signal: plan.stop.kind === "signal" ? run.controller.signal : undefined,
    progressIntervalMs: plan.progressMs,
  });
  run.flow = flow;
  for (const type of EVENTS) {
    flow.addEventListener(type, (e: Event) => {
      run.onEvent(type, (e as CustomEvent).detail);
    });
  }
  if (plan.progressMs !== undefined) {
    flow.addEventListener("progress", (e) => {
      if (e.detail.done) run.progressDone = true;
      run.observe("a progress event");
    });
  }
  if (plan.stop.kind === "abort" && plan.stop.when === "before") run.trigger();
  const timer = plan.stop.when === "ms"
    ? realSetTimeout(() => run.trigger(), plan.stop.at)
    : undefined;
  let outcome: Outcome;
  try {
    outcome = await settlesWithin(consume(run, flow), SETTLE_MS, "the run");
  } catch (e) {
    run.violate(1, String(e instanceof Error ? e.message : e));
    // Let what is left of the run end before the next one.
    await settlesWithin(flow.abort(), 1000, "abort").catch(() => {});
    await realSleep(20);
    return;
  } finally {
    realClearTimeout(timer);
  }
  if (flow.stats().done) {
    run.settled = true;
    checkQuiet(run, watch, "at settle");
  } else run.violate(1, "the consumer saw the end before settle");
  if (run.abortPromise !== undefined) {
    await settlesWithin(run.abortPromise, SETTLE_MS, "flow.abort()").catch(
      (e) => run.violate(1, `flow.abort() did not resolve: ${e}`),
    );
  }
  await settlesWithin(flow[Symbol.asyncDispose](), SETTLE_MS, "dispose").catch(
    (e) => run.violate(1, `the flow did not settle: ${e}`),
  );
  run.settled = true;
  checkQuiet(run, watch, "once settled");
  checkSettled(run, outcome, flow.stats());
  // A read pending at the stop may still hand its item over (counted as
  // cancelled, possibly after settle); a timer or call must not appear.
  for (let k = 0; k < 50 && run.source.pending > 0; k++) await realSleep(1);
  await realSleep(1);
  checkAfter(run, watch, outcome);
}

/** Checks 5 and 6: no call running, no library timer alive. */
function checkQuiet(run: Run, watch: TimerWatch, when: string): void {
  const busy = run.active.reduce((a, b) => a + b, 0) + run.handlers;
  if (busy > 0) run.violate(5, `${busy} calls running ${when}`);
  if (watch.live > 0) run.violate(6, `${watch.live} timers alive ${when}`);
}

/** Checks once the run has settled. */
function checkSettled(run: Run, out: Outcome, s: FlowStats): void {
  if (s.inFlight !== 0) {
    run.violate(2, "inFlight at settle", counts(s));
  }
  run.observe("settle");
  if (run.source.pending === 0 && s.itemsIn !== run.source.produced) {
    run.violate(2, "itemsIn is not what the source produced", {
      itemsIn: s.itemsIn,
      produced: run.source.produced,
    });
  }
  // 3: what was counted out is what the consumer received.
  if (s.results !== out.received.length) {
    run.violate(3, "results is not what the consumer received", {
      results: s.results,
      received: out.received.length,
    });
  }
  const shapely = out.received.every((v) =>
    wellFormed(v, run.depth[run.depth.length - 1])
  );
  if (shapely && weightsFollowValues(run.plan.stages)) {
    const weight = out.received.reduce((a, v) => a + weightOf(v), 0) / UNIT;
    if (s.itemsOut !== weight) {
      run.violate(3, "itemsOut is not the weight received", {
        itemsOut: s.itemsOut,
        received: weight,
      });
    }
  } else if (out.received.length === 0 && s.itemsOut !== 0) {
    run.violate(3, "itemsOut without a result received", counts(s));
  }
  // 1, 9: how the run ended.
  if (out.rejected && !run.reasonIsValid(out.reason)) {
    run.violate(9, "the run rejected with an unexpected reason", {
      reason: String(out.reason),
    });
  }
  if (out.rejected && out.left) run.violate(3, "left and rejected");
  const failStop = run.finals.length > 0;
  if (out.completed && failStop) {
    run.violate(9, "a final failure under onError 'fail' did not fail the run");
  }
  if (out.completed && run.source.error !== undefined) {
    run.violate(9, "the run completed although the source threw");
  }
  if (
    out.completed && run.triggered && run.plan.stop.when !== "ms" &&
    run.plan.stop.when !== "result"
  ) {
    // Aborted before or during a call: the run was going on.
    run.violate(3, "the run completed although it was aborted", {
      when: run.plan.stop.when,
    });
  }
  checkResults(run, out);
  checkEvents(run, s);
  if (run.plan.progressMs !== undefined && !run.progressDone) {
    run.violate(7, "no final progress event");
  }
}

/** Checks 4: the results, their keys, trails and order. */
function checkResults(run: Run, out: Outcome): void {
  const plan = run.plan;
  for (const record of run.flow.failures) {
    const s = run.names.indexOf(record.stage);
    const st = plan.stages[s];
    if (st === undefined || !wellFormed(record.item, run.depth[s])) {
      run.violate(9, "a failures record of no stage or item", record.stage);
      continue;
    }
    const item = record.item as Val;
    run.lose(item);
    const attempts = (st as WorkPlan).retry?.attempts ?? 1;
    const index = indexOf(item);
    if (
      record.index !== index || record.itemId !== run.idOf(index) ||
      !(record.attempts >= 1 && record.attempts <= attempts) ||
      !(record.error instanceof FuzzError ||
        record.error instanceof TimeoutError)
    ) {
      run.violate(9, "a failures record that does not match its item", {
        stage: record.stage,
        item: showVal(item),
        index: record.index,
        itemId: record.itemId,
        attempts: record.attempts,
        error: String(record.error),
      });
    }
  }
  const finalDepth = run.depth[run.depth.length - 1];
  const keys: (readonly number[])[] = [];
  for (const v of out.received) {
    if (!wellFormed(v, finalDepth)) {
      run.violate(4, "a malformed result", safeShow(v));
      return;
    }
    for (const l of leavesOf(v)) {
      if (!trailIsComplete(plan.stages, l.t)) {
        run.violate(
          4,
          "a result's trail misses or repeats a stage",
          showVal(l),
        );
      }
      keys.push(l.k);
    }
  }
  const isLost = (k: readonly number[]) =>
    k.some((_, i) => run.lost.has(k.slice(0, i + 1).join(".")));
  const expected: number[][] = [];
  for (let i = 0; i < run.source.produced; i++) {
    for (const k of keysOfItem(plan.seed, plan.stages, i)) {
      if (!isLost(k)) expected.push(k);
    }
  }
  const valid = new Set(expected.map((k) => k.join(".")));
  const seen = new Set<string>();
  for (const k of keys) {
    const key = k.join(".");
    if (seen.has(key)) run.violate(4, `result ${key} received twice`);
    seen.add(key);
    if (!valid.has(key)) {
      run.violate(
        4,
        `result ${key} is not expected (filtered, skipped or unknown)`,
      );
    }
  }
  if (plan.order === "input") {
    const prefix = expected.slice(0, keys.length);
    if (keys.some((k, i) => compareKeys(k, prefix[i] ?? []) !== 0)) {
      run.violate(4, "input order: results are not a prefix of the expected", {
        received: keys.map((k) => k.join(".")).slice(0, 40),
        expected: expected.map((k) => k.join(".")).slice(0, 40),
      });
    }
  }
  if (out.completed && keys.length !== expected.length) {
    run.violate(4, "a completed run misses results", {
      received: [...seen].slice(0, 40),
      expected: expected.map((k) => k.join(".")).slice(0, 40),
    });
  }
}

/** Checks 7: event counts against stats() and the calls seen. */
function checkEvents(run: Run, s: FlowStats): void {
  run.plan.stages.forEach((st, i) => {
    if (st.kind === "batch" || st.kind === "flatten") return;
    const name = run.names[i];
    const ev = run.events.get(name) ??
      Object.fromEntries(EVENTS.map((t) => [t, 0]));
    const ss = s.stages[i];
    const skips = run.flow.failures.filter((f) => f.stage === name).length;
    const got = {
      completed: ev.completed,
      failed: ev.failed,
      retrying: ev.retrying,
      skipped: ev.skipped,
      started: ev.started,
    };
    const unstarted = run.unstarted === name ? 1 : 0;
    const want = {
      completed: ss.completed,
      failed: ss.failed,
      retrying: ss.retried,
      skipped: ss.skipped,
      started: unstarted + (st.fns === 1 ||
          ev.started === run.allCalls[i] + unstarted
        ? run.allCalls[i]
        : run.firstCalls[i]), // a multi-task stage: per function or per run
    };
    if (JSON.stringify(got) !== JSON.stringify(want) || skips !== ss.skipped) {
      run.violate(7, `events of ${name} do not match stats`, {
        events: got,
        stats: want,
        failures: skips,
      });
    }
  });
}

/** Checks after a short wait: late source items, late calls, timers, cleanup. */
function checkAfter(run: Run, watch: TimerWatch, out: Outcome): void {
  const s = run.observe("after settle");
  if (s.itemsIn !== run.source.produced) {
    run.violate(2, "itemsIn is not what the source produced (after settle)", {
      itemsIn: s.itemsIn,
      produced: run.source.produced,
    });
  }
  if (s.inFlight !== 0) {
    run.violate(2, "inFlight after settle", counts(s));
  }
  checkQuiet(run, watch, "after settle");
  checkEvents(run, s);
  const source = run.source;
  const kind = run.plan.source.kind;
  const observable = kind === "stream" || kind === "thenable" ||
    ((kind === "sync" || kind === "async") && source.started);
  if (!out.completed && !source.ended && observable && !source.cleanedUp) {
    run.violate(11, "the run stopped without closing its source");
  }
}

Deno.test({
  name: "pipelines keep their contract under random faults, stops and sources",
  ignore: !enabled("pipeline"),
  async fn() {
    await fuzz("pipeline", runPlanArb, runPlan, RUNS);
    await realSleep(50); // sources' slow cleanups started by the last runs
  },
});
