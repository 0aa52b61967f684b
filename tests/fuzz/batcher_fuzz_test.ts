// Randomized fault-injection suite for Batcher (lib/batcher.ts).
//
// Generated, per run:
// - options: maxSize 1..8, maxWaitMs 0..10, concurrency 1..3 or Infinity,
//   maxQueueSize Infinity or 1..6 with onFull "wait" or "reject", and an
//   optional retry (attempts 1..3, delays 0..5 ms, factor, jitter);
// - a schedule of `process(id, { signal })` calls, each after a gap (same
//   turn, a microtask, or 1..4 ms), each with an abort plan: none, aborted
//   before the call, right after it (while queued or waiting for room), after
//   a few ms (whatever its state), once processBatch has its item
//   (synchronously inside processBatch, in a microtask, or a few ms later), or
//   after its promise settled;
// - processBatch behaviours, the k-th call taking behaviours[k % length]:
//   correct results (sync or after a sleep, some positions an `Error`), a
//   synchronous throw, a late rejection, a result of the wrong length or not
//   an array, a hang until ctx.signal aborts (or the run's end releases it
//   with an error), flaky (the first attempt fails). The correct and flaky
//   ones may also call process() themselves and reverse or drain (shift())
//   their items array in place, their results following the order given;
// - closes at random points: close(), close({ force: true }), both in either
//   order, or none, each made by the schedule or from inside the next
//   processBatch call; the run always ends with a final close().
// processBatch times its work with realSleep (real timers, not counted as the
// library's); a TimerWatch counts the library's timers during each run.
//
// The oracle checks:
// - every promise process() returned settles (watchdog), exactly once, with an
//   allowed outcome: its own item's result; its own per-item Error; the error
//   of the last attempt that held its item (a throw only once no retry is
//   left; RangeError/TypeError for a wrong length, naming the lengths);
//   QueueFullError when refused for room; its own signal's reason after its
//   abort; the force AbortError after close({ force: true }); a TypeError
//   when called after close(). Refused calls are not counted in stats().calls
//   and are never sent; a call that waits for room is counted as waiting;
// - processBatch: batches of 1..maxSize items, ids ascending and in call order
//   across batches, no item in two batches, no aborted or settled caller's
//   item sent, a retry holds a subset of the previous attempt on the same
//   workerId, attempts within retry.attempts, running calls and distinct
//   workerIds within concurrency (tracked here), none started after a force
//   close or after close() resolved, none running once close() resolved;
// - ctx.signal aborts on a force close and once every caller of the batch has
//   aborted, and only then;
// - stats() at every observation: calls === succeeded + failed + cancelled +
//   pending + waiting + inFlight, nothing negative, running <= concurrency,
//   pending <= maxQueueSize, no more library timers than one flush timer plus
//   one per batch backing off; a force close settles every caller at once
//   (pending, waiting and inFlight become cancelled); close() sends what is
//   queued at once while a slot is free, and resolves with nothing pending,
//   waiting, in flight or running and every caller settled; an abort after
//   settlement changes nothing; at the end the counts match the outcomes seen
//   here and the attempts logged (retries: processBatch calls after a
//   batch's first), and no library timer is alive;
// - nothing is thrown uncaught (an abort listener, a timer) during a run.
import fc from "fast-check";
import {
  type BatchContext,
  Batcher,
  type BatcherStats,
  QueueFullError,
} from "../../mod.ts";
import {
  check,
  enabled,
  fuzz,
  realSleep,
  settlesWithin,
  TimerWatch,
} from "./_fuzz.ts";

/** Runs when no --runs is given: about 35 s on a 2-core machine. */
const DEFAULT_RUNS = 1500;
/** The longest a run may take to settle before it counts as a hang. */
const WATCHDOG_MS = 5_000;
/** At most this many process() calls per run (schedule and processBatch). */
const MAX_CALLS = 40;
/** Microtasks a caller may take to settle after close() or a force close. */
const MICROTASKS = 20;

// ---------------------------------------------------------------------------
// Scenarios

/** -1: same synchronous turn as the previous step; 0: a microtask; n: n ms. */
type Gap = number;

type AbortPlan =
  | { readonly at: "none" }
  | { readonly at: "before" }
  | { readonly at: "queued" }
  | { readonly at: "timer"; readonly ms: number }
  | { readonly at: "processing"; readonly ms: number }
  | { readonly at: "after" };

interface CallSpec {
  readonly gap: Gap;
  readonly abort: AbortPlan;
}

type Behaviour =
  | {
    readonly kind: "ok";
    readonly sync: boolean;
    readonly ms: number;
    /** Positions p with p % errEvery === errAt get an Error (0: none). */
    readonly errEvery: number;
    readonly errAt: number;
    readonly readSignal: boolean;
    readonly mutate: Mutation;
    /** process() calls it makes itself, synchronously, when it starts. */
    readonly spawn: number;
  }
  | { readonly kind: "throw" }
  | { readonly kind: "rejectLate"; readonly ms: number }
  | {
    readonly kind: "wrongLength";
    readonly ms: number;
    /** -1 one result short, 1 one too many, 0 not an array. */
    readonly delta: number;
  }
  | { readonly kind: "hang" }
  | {
    readonly kind: "flaky";
    readonly ms: number;
    readonly readSignal: boolean;
    readonly mutate: Mutation;
    readonly spawn: number;
  };

/**
 * What processBatch does to its `items` array once it has read it (results
 * still follow the order it was given): nothing, reverse it in place, or
 * drain it with shift().
 */
type Mutation = "none" | "reverse" | "drain";

interface CloseSpec {
  /** How many of the calls come after it (at most all of them). */
  readonly callsAfter: number;
  readonly gap: Gap;
  readonly force: boolean;
  /**
   * Made by the next processBatch call to start, synchronously, instead of
   * by the schedule (by the schedule at the end if none starts).
   */
  readonly inBatch: boolean;
}

interface Options {
  readonly maxSize: number;
  readonly maxWaitMs: number;
  readonly concurrency: number;
  readonly maxQueueSize: number;
  readonly onFull: "wait" | "reject";
  readonly retry?: {
    readonly attempts: number;
    readonly delayMs: number;
    readonly factor: number;
    readonly jitter: boolean;
  };
}

interface Scenario {
  readonly options: Options;
  readonly calls: readonly CallSpec[];
  readonly behaviours: readonly Behaviour[];
  readonly closes: readonly CloseSpec[];
  /** After the final close(), hung batches are released after this many ms. */
  readonly releaseMs: number;
}

const gapArb: fc.Arbitrary<Gap> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(-1) },
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }) },
);

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ at: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ at: "before" as const }) },
  { weight: 2, arbitrary: fc.constant({ at: "queued" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      at: fc.constant("timer" as const),
      ms: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      at: fc.constant("processing" as const),
      ms: fc.integer({ min: -1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ at: "after" as const }) },
);

const msArb = fc.integer({ min: 0, max: 6 });

const spawnArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) },
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant("none" as const) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("reverse" as const, "drain" as const),
  },
);

const behaviourArb: fc.Arbitrary<Behaviour> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("ok" as const),
      sync: fc.boolean(),
      ms: msArb,
      errEvery: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) },
      ),
      errAt: fc.integer({ min: 0, max: 2 }),
      readSignal: fc.boolean(),
      mutate: mutationArb,
      spawn: spawnArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "throw" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("rejectLate" as const),
      ms: msArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("wrongLength" as const),
      ms: msArb,
      delta: fc.constantFrom(-1, 0, 1),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "hang" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("flaky" as const),
      ms: msArb,
      readSignal: fc.boolean(),
      mutate: mutationArb,
      spawn: spawnArb,
    }),
  },
);

const optionsArb: fc.Arbitrary<Options> = fc.record({
  maxSize: fc.integer({ min: 1, max: 8 }),
  maxWaitMs: fc.integer({ min: 0, max: 10 }),
  concurrency: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) },
    { weight: 1, arbitrary: fc.constant(Infinity) },
  ),
  maxQueueSize: fc.oneof(
    { weight: 1, arbitrary: fc.constant(Infinity) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 6 }) },
  ),
  onFull: fc.constantFrom("wait" as const, "reject" as const),
  retry: fc.option(
    fc.record({
      attempts: fc.integer({ min: 1, max: 3 }),
      delayMs: fc.integer({ min: 0, max: 5 }),
      factor: fc.constantFrom(1, 2),
      jitter: fc.boolean(),
    }),
    { nil: undefined },
  ),
});

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  options: optionsArb,
  calls: fc.array(fc.record({ gap: gapArb, abort: abortArb }), {
    maxLength: 24,
    size: "medium",
  }),
  behaviours: fc.array(behaviourArb, { minLength: 1, maxLength: 6 }),
  closes: fc.oneof(
    { weight: 3, arbitrary: fc.constant([] as boolean[]) },
    { weight: 3, arbitrary: fc.constant([false]) },
    { weight: 2, arbitrary: fc.constant([true]) },
    { weight: 1, arbitrary: fc.constant([false, true]) },
    { weight: 1, arbitrary: fc.constant([true, false]) },
  ).chain((forces) =>
    fc.tuple(
      ...forces.map((force) =>
        fc.record({
          callsAfter: fc.oneof(
            { weight: 3, arbitrary: fc.constant(0) },
            { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) },
            { weight: 1, arbitrary: fc.integer({ min: 0, max: 24 }) },
          ),
          gap: gapArb,
          force: fc.constant(force),
          inBatch: fc.oneof(
            { weight: 3, arbitrary: fc.constant(false) },
            { weight: 1, arbitrary: fc.constant(true) },
          ),
        })
      ),
    )
  ),
  releaseMs: fc.integer({ min: 0, max: 5 }),
});

// ---------------------------------------------------------------------------
// A run

/** The reason a caller's own signal aborts with (one per caller). */
class CallerAbort extends Error {
  constructor(readonly id: number) {
    super(`caller ${id} aborted`);
  }
}

/** A per-item Error result. */
class ItemError extends Error {
  constructor(readonly id: number) {
    super(`item ${id} refused`);
  }
}

/** What a failing processBatch attempt throws (one per attempt). */
class BatchError extends Error {
  constructor(readonly k: number, what: string) {
    super(`processBatch call ${k}: ${what}`);
  }
}

type Outcome =
  | { readonly kind: "results"; readonly values: readonly (string | Error)[] }
  | { readonly kind: "throw"; readonly error: unknown }
  | { readonly kind: "wrong"; readonly length: number | null };

/** One processBatch call (one attempt of a batch). */
interface Attempt {
  readonly k: number;
  readonly items: readonly number[];
  readonly attempt: number;
  readonly workerId: number;
  readonly startSeq: number;
  endSeq: number;
  outcome: Outcome | undefined;
  /** Its ctx.signal, once read. */
  signal: AbortSignal | undefined;
}

/** One process() call. */
interface Call {
  readonly id: number;
  readonly spec: CallSpec;
  readonly controller: AbortController | undefined;
  readonly reason: CallerAbort;
  abortSeq: number;
  closedBefore: boolean;
  before: BatcherStats | undefined;
  /** stats().calls grew by this much across the call; -1 during it. */
  counted: number;
  observedSeq: number;
  settlements: number;
  status: "fulfilled" | "rejected" | undefined;
  value: unknown;
  done: Promise<void> | undefined;
  processingTriggered: boolean;
}

const resultOf = (id: number): string => `r${id}`;

function plural(n: number, noun: string): string {
  return n === 1 ? `1 ${noun}` : `${n} ${noun}s`;
}

function isForceError(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError" &&
    e.message === "The batcher was closed with { force: true }";
}

async function microtasks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** Resolves when either signal aborts. */
function untilEither(a: AbortSignal, b: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (a.aborted || b.aborted) return resolve();
    const done = () => {
      a.removeEventListener("abort", done);
      b.removeEventListener("abort", done);
      resolve();
    };
    a.addEventListener("abort", done, { once: true });
    b.addEventListener("abort", done, { once: true });
  });
}

class Run {
  readonly sc: Scenario;
  readonly opts: Options;
  readonly watch: TimerWatch;
  readonly batcher: Batcher<number, string>;
  readonly maxAttempts: number;

  seq = 0;
  readonly calls: Call[] = [];
  readonly attempts: Attempt[] = [];
  readonly sentIn = new Map<number, Attempt[]>();
  readonly violations: Error[] = [];
  /** Resolves at the first violation: the run stops waiting then. */
  readonly violated: Promise<void>;
  #onViolation!: () => void;
  readonly tasks: Promise<unknown>[] = [];
  readonly closes: Promise<void>[] = [];
  /** processBatch calls running, and their workerIds. */
  running = 0;
  readonly workers = new Set<number>();
  readonly lastOnWorker = new Map<number, Attempt>();
  /** ctx.signal objects already listened to. */
  readonly signals = new WeakSet<AbortSignal>();
  invocations = 0;
  /** Closes to make from inside the next processBatch call (force or not). */
  readonly armed: boolean[] = [];
  /** The highest id of the batches sent so far. */
  lastSentId = -1;
  closeSeq = -1;
  forceSeq = -1;
  closeResolvedSeq = -1;
  readonly release = new AbortController();

  constructor(sc: Scenario, watch: TimerWatch) {
    this.sc = sc;
    this.opts = sc.options;
    this.watch = watch;
    this.maxAttempts = sc.options.retry?.attempts ?? 1;
    this.violated = new Promise((resolve) => this.#onViolation = resolve);
    this.batcher = new Batcher(
      (items: number[], ctx: BatchContext) => this.processBatch(items, ctx),
      this.opts,
    );
  }

  next(): number {
    return ++this.seq;
  }

  /** Records a violation (thrown at the end: never into the library). */
  expect(ok: boolean, message: string, detail?: unknown): void {
    try {
      check(ok, message, detail);
    } catch (e) {
      this.violations.push(e as Error);
      this.#onViolation();
    }
  }

  /** Reads stats() and checks what must hold at every moment. */
  observe(where: string): BatcherStats {
    const s = this.batcher.stats();
    const o = this.opts;
    const sum = s.succeeded + s.failed + s.cancelled + s.pending + s.waiting +
      s.inFlight;
    this.expect(s.calls === sum, `stats unbalanced (${where})`, s);
    for (
      const key of [
        "calls",
        "batchesSent",
        "itemsProcessed",
        "retries",
        "succeeded",
        "failed",
        "cancelled",
        "pending",
        "waiting",
        "inFlight",
        "running",
      ] as const
    ) {
      this.expect(s[key] >= 0, `stats.${key} negative (${where})`, s);
    }
    this.expect(s.running <= o.concurrency, `running > concurrency`, s);
    this.expect(s.pending <= o.maxQueueSize, `pending > maxQueueSize`, s);
    if (o.onFull === "reject") {
      this.expect(s.waiting === 0, `waiting with onFull reject`, s);
    }
    this.expect(
      this.running <= s.running,
      `processBatch calls running (${this.running}) > stats.running (${where})`,
      s,
    );
    this.expect(
      this.watch.live <= 1 + s.running - this.running,
      `${this.watch.live} library timers alive: more than one flush timer ` +
        `and one per batch backing off (${where})`,
      s,
    );
    return s;
  }

  // -- the schedule ----------------------------------------------------------

  async gap(gap: Gap): Promise<void> {
    if (gap === 0) await Promise.resolve();
    else if (gap > 0) await realSleep(gap);
  }

  async execute(): Promise<void> {
    const { calls, closes } = this.sc;
    for (let i = 0; i <= calls.length; i++) {
      for (const close of closes) {
        if (Math.max(0, calls.length - close.callsAfter) !== i) continue;
        await this.gap(close.gap);
        if (close.inBatch) this.armed.push(close.force);
        else this.close(close.force);
      }
      if (i < calls.length) {
        await this.gap(calls[i].gap);
        this.call(calls[i]);
      }
    }
    for (const force of this.armed.splice(0)) this.close(force);
    this.close(false); // the final close()
    this.tasks.push(
      realSleep(this.sc.releaseMs).then(() => this.release.abort()),
    );
    await this.settle(Promise.all(this.closes), "close()");
    await this.settle(
      Promise.all(this.calls.map((c) => c.done)),
      "the process() promises",
    );
    await this.settle(Promise.all(this.tasks), "the run's own tasks");
    this.finalChecks();
    this.throwViolations();
  }

  throwViolations(): void {
    if (this.violations.length === 0) return;
    const [first] = this.violations;
    first.message += ` (${this.violations.length} violation(s) in all)`;
    throw first;
  }

  /** Awaits `promise` under the watchdog; a hang names what is unsettled. */
  async settle(promise: Promise<unknown>, what: string): Promise<void> {
    try {
      await settlesWithin(
        Promise.race([promise, this.violated]),
        WATCHDOG_MS,
        what,
      );
    } catch (e) {
      const unsettled = this.calls.filter((c) => c.settlements === 0)
        .map((c) => c.id);
      const running = this.attempts.filter((a) => a.endSeq < 0).map((a) => a.k);
      (e as Error).message +=
        `; unsettled calls ${
          JSON.stringify(unsettled)
        }, processBatch calls running ${JSON.stringify(running)}, stats ${
          JSON.stringify(this.batcher.stats())
        }` + (this.violations.length > 0
          ? `; first violation: ${this.violations[0].message}`
          : "");
      throw e;
    }
    this.throwViolations(); // no waiting on after a violation
  }

  call(spec: CallSpec): void {
    const id = this.calls.length;
    const c: Call = {
      id,
      spec,
      controller: spec.abort.at === "none" ? undefined : new AbortController(),
      reason: new CallerAbort(id),
      abortSeq: -1,
      closedBefore: this.closeSeq >= 0,
      before: undefined,
      counted: -1,
      observedSeq: -1,
      settlements: 0,
      status: undefined,
      value: undefined,
      done: undefined,
      processingTriggered: false,
    };
    this.calls.push(c);
    if (spec.abort.at === "before") this.abort(c);
    const before = c.before = this.observe(`before call ${id}`);
    const promise = this.batcher.process(
      id,
      c.controller === undefined ? undefined : { signal: c.controller.signal },
    );
    const after = this.observe(`after call ${id}`);
    c.counted = after.calls - before.calls;
    this.expect(
      c.counted === 0 || c.counted === 1,
      `call ${id} changed stats.calls by ${c.counted}`,
    );
    if (c.counted === 1) {
      const full = before.pending >= this.opts.maxQueueSize ||
        before.waiting > 0;
      if (full) {
        this.expect(
          after.waiting === before.waiting + 1,
          `call ${id} on a full queue is not waiting for room`,
          { before, after },
        );
      } else {
        this.expect(
          after.pending === before.pending + 1,
          `call ${id} with room is not pending`,
          { before, after },
        );
      }
    }
    c.done = promise.then(
      (value) => this.settled(c, "fulfilled", value),
      (reason) => this.settled(c, "rejected", reason),
    );
    const plan = spec.abort;
    if (plan.at === "queued") this.abort(c);
    else if (plan.at === "timer") {
      this.tasks.push(realSleep(plan.ms).then(() => this.abort(c)));
    }
  }

  abort(c: Call): void {
    const controller = c.controller!;
    if (controller.signal.aborted) return;
    c.abortSeq = this.next();
    controller.abort(c.reason);
    this.observe(`after abort of call ${c.id}`);
    // A running batch whose callers have all gone has its ctx.signal aborted.
    for (const rec of this.sentIn.get(c.id) ?? []) {
      if (rec.endSeq >= 0 || rec.signal === undefined) continue;
      this.expect(
        rec.signal.aborted ||
          rec.items.some((id) => this.calls[id].abortSeq < 0),
        `ctx.signal of processBatch call ${rec.k} not aborted once every ` +
          `caller of the batch aborted`,
      );
    }
  }

  settled(c: Call, status: "fulfilled" | "rejected", value: unknown): void {
    c.observedSeq = this.next();
    c.settlements++;
    this.expect(c.settlements === 1, `call ${c.id} settled twice`);
    c.status = status;
    c.value = value;
    const before = this.observe(`call ${c.id} settled`);
    if (c.spec.abort.at === "after") {
      this.abort(c);
      const after = this.observe(`abort of settled call ${c.id}`);
      for (
        const key of [
          "calls",
          "succeeded",
          "failed",
          "cancelled",
          "pending",
          "waiting",
          "inFlight",
        ] as const
      ) {
        this.expect(
          after[key] === before[key],
          `aborting settled call ${c.id} changed stats.${key}`,
          { before, after },
        );
      }
    }
  }

  close(force: boolean): void {
    if (this.closeSeq < 0) this.closeSeq = this.next();
    const first = force && this.forceSeq < 0;
    if (first) this.forceSeq = this.next();
    const before = this.observe("before close()");
    const promise = this.batcher.close(force ? { force: true } : undefined);
    const after = this.observe("after close()");
    this.expect(this.batcher.closed, "closed is false after close()");
    if (first) {
      this.expect(
        after.pending === 0 && after.waiting === 0 && after.inFlight === 0 &&
          after.cancelled ===
            before.cancelled + before.pending + before.waiting +
              before.inFlight,
        "close({ force: true }) did not cancel every pending caller at once",
        { before, after },
      );
      this.tasks.push(this.allSettledSoon("close({ force: true })"));
      for (const rec of this.attempts) {
        this.expect(
          rec.endSeq >= 0 || rec.signal === undefined || rec.signal.aborted,
          `close({ force: true }) left ctx.signal of running processBatch ` +
            `call ${rec.k} unaborted`,
        );
      }
    }
    if (!force) this.tasks.push(this.sentSoon());
    this.closes.push(promise.then(
      () => this.closeResolved(),
      (e) => this.expect(false, `close() rejected: ${e}`),
    ));
  }

  async closeResolved(): Promise<void> {
    if (this.closeResolvedSeq < 0) this.closeResolvedSeq = this.next();
    this.expect(
      this.running === 0,
      `${this.running} processBatch call(s) running after close() resolved`,
    );
    const s = this.observe("close() resolved");
    this.expect(
      s.pending === 0 && s.waiting === 0 && s.inFlight === 0 &&
        s.running === 0,
      "close() resolved with calls pending, waiting or in flight",
      s,
    );
    await this.allSettledSoon("close() resolved");
  }

  /** After close(), what is queued goes at once while a slot is free. */
  async sentSoon(): Promise<void> {
    await microtasks(MICROTASKS);
    const s = this.observe("after close() and a few microtasks");
    this.expect(
      s.running >= this.opts.concurrency ||
        (s.pending === 0 && s.waiting === 0),
      "close() left calls queued with a slot free",
      s,
    );
  }

  /** Every accepted call settles within a few microtasks. */
  async allSettledSoon(what: string): Promise<void> {
    await microtasks(MICROTASKS);
    const unsettled = this.calls.filter((c) =>
      c.counted === 1 && c.settlements === 0
    ).map((c) => c.id);
    this.expect(
      unsettled.length === 0,
      `calls unsettled after ${what}`,
      unsettled,
    );
  }

  // -- processBatch ------------------------------------------------------------

  processBatch(
    items: number[],
    ctx: BatchContext,
  ): (string | Error)[] | Promise<(string | Error)[]> {
    const k = this.invocations++;
    const { attempt, workerId } = ctx;
    const rec: Attempt = {
      k,
      items: [...items],
      attempt,
      workerId,
      startSeq: this.next(),
      endSeq: -1,
      outcome: undefined,
      signal: undefined,
    };
    this.startChecks(rec);
    this.attempts.push(rec);
    this.lastOnWorker.set(workerId, rec);
    for (const id of items) {
      const list = this.sentIn.get(id);
      if (list === undefined) this.sentIn.set(id, [rec]);
      else list.push(rec);
    }
    this.running++;
    this.workers.add(workerId);
    this.expect(
      this.running <= this.opts.concurrency,
      `${this.running} processBatch calls running with concurrency ${this.opts.concurrency}`,
    );
    this.observe(`processBatch call ${k} started`);
    this.triggerProcessingAborts(items);

    const b = this.sc.behaviours[k % this.sc.behaviours.length];
    if (b.kind === "ok" || b.kind === "flaky") {
      // Calls from inside processBatch (a bounded number per run).
      for (let j = 0; j < b.spawn && this.calls.length < MAX_CALLS; j++) {
        this.call({ gap: -1, abort: { at: "none" } });
      }
    }
    for (const force of this.armed.splice(0)) this.close(force);
    if (b.kind === "ok" || b.kind === "flaky") {
      if (b.mutate === "reverse") items.reverse();
      else if (b.mutate === "drain") {
        while (items.length > 0) items.shift();
      }
    }
    if (b.kind === "throw") {
      const error = new BatchError(k, "sync throw");
      this.end(rec, { kind: "throw", error });
      throw error;
    }
    if (b.kind === "ok" && b.sync) {
      const values = this.results(rec.items, b.errEvery, b.errAt);
      if (b.readSignal) this.watchSignal(ctx, rec);
      this.end(rec, { kind: "results", values });
      return values;
    }
    return this.later(rec, b, ctx);
  }

  startChecks(rec: Attempt): void {
    const { k, items, attempt, workerId } = rec;
    const o = this.opts;
    const where = `processBatch call ${k} (attempt ${attempt}, items ${
      JSON.stringify(items)
    })`;
    this.expect(this.forceSeq < 0, `${where} started after a force close`);
    this.expect(
      this.closeResolvedSeq < 0,
      `${where} started after close() resolved`,
    );
    this.expect(
      items.length >= 1 && items.length <= o.maxSize,
      `${where}: batch size out of 1..${o.maxSize}`,
    );
    this.expect(
      items.every((id, i) => i === 0 || items[i - 1] < id),
      `${where}: items not in call order`,
    );
    this.expect(
      Number.isInteger(workerId) && workerId >= 0 &&
        workerId < o.concurrency && !this.workers.has(workerId),
      `${where}: workerId ${workerId} out of range or already running`,
    );
    this.expect(
      attempt >= 1 && attempt <= this.maxAttempts,
      `${where}: attempt out of 1..${this.maxAttempts}`,
    );
    for (const id of items) {
      const c = this.calls[id];
      this.expect(c !== undefined, `${where}: unknown item ${id}`);
      if (c === undefined) continue;
      this.expect(c.counted !== -1, `${where} ran inside process()`);
      this.expect(c.counted === 1, `${where}: a refused call's item ${id}`);
      this.expect(c.abortSeq < 0, `${where}: aborted call ${id} was sent`);
      this.expect(c.settlements === 0, `${where}: settled call ${id} sent`);
    }
    if (attempt === 1) {
      for (const id of items) {
        this.expect(!this.sentIn.has(id), `${where}: item ${id} sent twice`);
      }
      this.expect(
        items[0] > this.lastSentId,
        `${where}: sent after a batch holding a later item ${this.lastSentId}`,
      );
      this.lastSentId = items[items.length - 1];
      return;
    }
    const prev = this.lastOnWorker.get(workerId);
    this.expect(
      prev !== undefined && prev.attempt === attempt - 1 &&
        prev.endSeq >= 0 && prev.outcome?.kind === "throw",
      `${where}: a retry that follows no failed attempt on its workerId`,
    );
    if (prev === undefined) return;
    this.expect(
      items.every((id) => prev.items.includes(id)),
      `${where}: a retry holds items its previous attempt did not`,
    );
    for (const id of prev.items) {
      if (items.includes(id)) continue;
      this.expect(
        this.calls[id].abortSeq >= 0,
        `${where}: item ${id} left the retry without an abort`,
      );
    }
  }

  /** Aborts the callers planned to abort once their item is processed. */
  triggerProcessingAborts(items: readonly number[]): void {
    for (const id of items) {
      const c = this.calls[id];
      const plan = c?.spec.abort;
      if (plan?.at !== "processing" || c.processingTriggered) continue;
      c.processingTriggered = true;
      if (plan.ms < 0) this.abort(c);
      else if (plan.ms === 0) queueMicrotask(() => this.abort(c));
      else this.tasks.push(realSleep(plan.ms).then(() => this.abort(c)));
    }
  }

  results(
    items: readonly number[],
    errEvery: number,
    errAt: number,
  ): (string | Error)[] {
    return items.map((id, p) =>
      errEvery > 0 && p % errEvery === errAt % errEvery
        ? new ItemError(id)
        : resultOf(id)
    );
  }

  async later(
    rec: Attempt,
    b: Exclude<Behaviour, { kind: "throw" }>,
    ctx: BatchContext,
  ): Promise<(string | Error)[]> {
    const { k, items } = rec; // as given, whatever processBatch did to them
    try {
      switch (b.kind) {
        case "ok": {
          await realSleep(
            b.ms,
            b.readSignal ? this.watchSignal(ctx, rec) : undefined,
          );
          const values = this.results(items, b.errEvery, b.errAt);
          this.end(rec, { kind: "results", values });
          return values;
        }
        case "rejectLate": {
          await realSleep(b.ms);
          throw new BatchError(k, "late rejection");
        }
        case "wrongLength": {
          await realSleep(b.ms);
          const values = this.results(items, 0, 0);
          const out = b.delta === 0
            ? null
            : b.delta < 0
            ? values.slice(1)
            : [...values, "extra"];
          this.end(rec, { kind: "wrong", length: out?.length ?? null });
          return out as (string | Error)[];
        }
        case "hang": {
          const signal = this.watchSignal(ctx, rec);
          await untilEither(signal, this.release.signal);
          throw signal.aborted
            ? signal.reason
            : new BatchError(k, "hang released");
        }
        case "flaky": {
          await realSleep(
            b.ms,
            b.readSignal ? this.watchSignal(ctx, rec) : undefined,
          );
          if (ctx.attempt === 1) throw new BatchError(k, "flaky first attempt");
          const values = this.results(items, 0, 0);
          this.end(rec, { kind: "results", values });
          return values;
        }
      }
    } catch (error) {
      if (rec.endSeq < 0) this.end(rec, { kind: "throw", error });
      throw error;
    }
  }

  end(rec: Attempt, outcome: Outcome): void {
    rec.endSeq = this.next();
    rec.outcome = outcome;
    this.running--;
    this.workers.delete(rec.workerId);
    this.observe(`processBatch call ${rec.k} ended`);
  }

  /** Reads ctx.signal and checks why it aborts. */
  watchSignal(ctx: BatchContext, rec: Attempt): AbortSignal {
    const signal = rec.signal = ctx.signal;
    const workerId = ctx.workerId;
    if (!this.signals.has(signal)) {
      this.signals.add(signal);
      if (signal.aborted) this.batchAborted(signal, workerId);
      else {
        signal.addEventListener(
          "abort",
          () => this.batchAborted(signal, workerId),
          { once: true },
        );
      }
    }
    return signal;
  }

  batchAborted(signal: AbortSignal, workerId: number): void {
    const rec = this.lastOnWorker.get(workerId)!;
    const reason = signal.reason;
    this.expect(
      reason instanceof DOMException && reason.name === "AbortError",
      `ctx.signal of processBatch call ${rec.k} aborted with ${reason}`,
    );
    const waiting = rec.items.filter((id) => this.calls[id].abortSeq < 0);
    this.expect(
      this.forceSeq >= 0 || waiting.length === 0,
      `ctx.signal of processBatch call ${rec.k} aborted while callers ` +
        `still wait and without a force close`,
      waiting,
    );
  }

  // -- the end -----------------------------------------------------------------

  finalChecks(): void {
    const s = this.observe("the end");
    this.expect(
      s.pending === 0 && s.waiting === 0 && s.inFlight === 0 &&
        s.running === 0 && this.running === 0,
      "calls or batches left at the end",
      s,
    );
    this.expect(
      this.watch.live === 0,
      `${this.watch.live} library timer(s) alive once everything settled`,
    );
    for (const rec of this.attempts) {
      this.expect(
        rec.endSeq >= 0 && rec.outcome !== undefined,
        `processBatch call ${rec.k} never ended`,
      );
    }
    // Per item: every attempt holding it but the last one failed.
    for (const [id, list] of this.sentIn) {
      list.forEach((rec, i) => {
        this.expect(
          rec.attempt === i + 1,
          `item ${id}: attempts ${
            list.map((r) => r.attempt)
          } do not count 1, 2, …`,
        );
        if (i < list.length - 1) {
          this.expect(
            rec.outcome?.kind === "throw",
            `item ${id} was processed again after attempt ${rec.k} succeeded`,
          );
        }
      });
    }
    let accepted = 0, succeeded = 0, failed = 0, cancelled = 0;
    for (const c of this.calls) {
      this.expect(
        c.settlements === 1,
        `call ${c.id} settled ${c.settlements} times`,
      );
      if (c.counted === 1) accepted++;
      const kind = this.classify(c);
      if (kind === "succeeded") succeeded++;
      else if (kind === "failed") failed++;
      else if (kind === "cancelled") cancelled++;
    }
    const firsts = this.attempts.filter((a) => a.attempt === 1);
    const expected = {
      calls: accepted,
      succeeded,
      failed,
      cancelled,
      batchesSent: firsts.length,
      itemsProcessed: firsts.reduce((n, a) => n + a.items.length, 0),
      retries: this.attempts.length - firsts.length,
    };
    const actual = {
      calls: s.calls,
      succeeded: s.succeeded,
      failed: s.failed,
      cancelled: s.cancelled,
      batchesSent: s.batchesSent,
      itemsProcessed: s.itemsProcessed,
      retries: s.retries,
    };
    this.expect(
      JSON.stringify(actual) === JSON.stringify(expected),
      "final stats do not match the outcomes and attempts seen",
      { actual, expected },
    );
  }

  /** Checks a call's outcome; returns how stats() should count it. */
  classify(c: Call): "refused" | "succeeded" | "failed" | "cancelled" {
    const { id, status, value } = c;
    const where = `call ${id} (${status} with ${
      value instanceof Error ? `${value.name}: ${value.message}` : value
    })`;
    const sent = this.sentIn.get(id);
    if (c.counted !== 1) {
      const o = this.opts;
      const ok = status === "rejected" && (
        (c.closedBefore && value instanceof TypeError &&
          /called after close\(\)/.test(value.message)) ||
        (c.spec.abort.at === "before" && value === c.reason) ||
        (value instanceof QueueFullError && o.onFull === "reject" &&
          c.before!.pending >= o.maxQueueSize)
      );
      this.expect(ok, `${where}: refused for no reason`);
      this.expect(sent === undefined, `${where}: refused but sent`);
      return "refused";
    }
    this.expect(!c.closedBefore, `${where}: accepted after close()`);
    this.expect(c.spec.abort.at !== "before", `${where}: accepted aborted`);
    if (this.opts.onFull === "reject") {
      this.expect(
        c.before!.pending < this.opts.maxQueueSize,
        `${where}: accepted on a full queue with onFull reject`,
      );
    }
    for (const rec of sent ?? []) {
      this.expect(
        c.abortSeq < 0 || rec.startSeq < c.abortSeq,
        `${where}: sent in processBatch call ${rec.k} after its abort`,
      );
    }
    if (status === "rejected" && value === c.reason) {
      this.expect(
        c.abortSeq >= 0 && c.abortSeq < c.observedSeq,
        `${where}: its abort reason before its abort`,
      );
      return "cancelled";
    }
    if (status === "rejected" && isForceError(value)) {
      this.expect(
        this.forceSeq >= 0 && this.forceSeq < c.observedSeq,
        `${where}: the force error without a force close`,
      );
      return "cancelled";
    }
    const rec = sent?.[sent.length - 1];
    this.expect(rec !== undefined, `${where}: settled but never sent`);
    if (rec === undefined) return "failed";
    this.expect(
      (c.abortSeq < 0 || c.abortSeq > rec.endSeq) &&
        (this.forceSeq < 0 || this.forceSeq > rec.endSeq),
      `${where}: settled by processBatch call ${rec.k} ` +
        `though aborted or force-closed before it returned`,
    );
    const outcome = rec.outcome;
    const pos = rec.items.indexOf(id);
    if (outcome?.kind === "results") {
      const expected = outcome.values[pos];
      this.expect(
        value === expected &&
          (status === "fulfilled") === (typeof expected === "string") &&
          (typeof expected !== "string" || expected === resultOf(id)),
        `${where}: not its result of processBatch call ${rec.k}`,
      );
      return status === "fulfilled" ? "succeeded" : "failed";
    }
    this.expect(status === "rejected", `${where}: but its batch failed`);
    if (outcome?.kind === "throw") {
      this.expect(
        value === outcome.error,
        `${where}: not the error of processBatch call ${rec.k}`,
      );
      this.expect(
        rec.attempt === this.maxAttempts,
        `${where}: the error of attempt ${rec.attempt} of ${this.maxAttempts}`,
      );
      return "failed";
    }
    if (outcome?.kind === "wrong") {
      const n = rec.items.length;
      const message = outcome.length === null
        ? `processBatch must return an array with one result per item: ` +
          `it returned null for a batch of ${plural(n, "item")}`
        : `processBatch returned ${plural(outcome.length, "result")} for a ` +
          `batch of ${plural(n, "item")}: it must return one result per ` +
          `item, in order`;
      const type = outcome.length === null ? TypeError : RangeError;
      this.expect(
        value instanceof type && value.message === message,
        `${where}: not the wrong-length error of processBatch call ${rec.k}`,
      );
      return "failed";
    }
    this.expect(false, `${where}: processBatch call ${rec.k} has no outcome`);
    return "failed";
  }
}

async function property(sc: Scenario): Promise<void> {
  const watch = new TimerWatch();
  let run: Run | undefined;
  // An exception thrown by the library in an abort listener or a timer would
  // end the whole test: it fails this run instead (and is shrunk).
  const uncaught = (event: Event) => {
    event.preventDefault();
    const error = event instanceof ErrorEvent
      ? event.error
      : (event as PromiseRejectionEvent).reason;
    run?.expect(false, `uncaught ${error?.stack ?? error}`);
  };
  globalThis.addEventListener("error", uncaught);
  globalThis.addEventListener("unhandledrejection", uncaught);
  watch.install();
  try {
    run = new Run(sc, watch);
    await run.execute();
  } catch (e) {
    // Let whatever still runs end (hung batches, queued callers).
    run?.release.abort();
    run?.batcher.close({ force: true }).catch(() => {});
    throw e;
  } finally {
    watch.uninstall();
    globalThis.removeEventListener("error", uncaught);
    globalThis.removeEventListener("unhandledrejection", uncaught);
  }
}

Deno.test({
  name:
    "Batcher fuzz: random calls, aborts, processBatch faults and closes settle every promise once, as allowed, with stats balanced and no timer left",
  ignore: !enabled("batcher"),
  fn: () => fuzz("batcher", scenarioArb, property, DEFAULT_RUNS),
});
