// Randomized fault injection for Pool.
//
// Generated: a pool (concurrency 1..4 or Infinity; optional retry with 1..3
// attempts, 0..10 ms delays, with or without jitter; optional timeoutMs; a
// pool `signal` that is absent, aborted before the pool is made, or aborted by
// an operation), then a sequence of operations, each followed by nothing (the
// next one runs in the same tick) or by a real sleep of 0..10 ms: submit();
// run() with a priority and its own signal (none, one never aborted, one
// aborted before the call or after a delay); map() over an array, a
// generator or an async generator (which may throw at some item), in input
// or completion order, with a bufferSize, a priority and a signal like
// run()'s, read by a consumer that reads all, breaks early or throws, slowly
// or not; pause(), resume(), close(), close({ cancelPending: true }), an
// abort of the pool's signal, onIdle(), onSizeLessThan(). Every task does
// one of: return at once, return after a short sleep (leaving early with the
// signal's reason when its signal aborts), throw at once, reject after a
// sleep, fail its first attempts (flaky), hang until ctx.signal aborts, or
// ignore its signal and return after a short sleep. The run ends with
// close() (with cancelPending when some task may hang).
//
// The oracle checks:
// - every promise the pool returned, every map iteration, every close(),
//   onIdle() and onSizeLessThan() settles (a watchdog turns a hang into a
//   failure);
// - each task settles with an allowed outcome: its value (only if its last
//   attempt returned it), its own error from its last attempt, a
//   TimeoutError (only with timeoutMs), the cancel AbortError (only after
//   close({ cancelPending: true })), the pool signal's or its own signal's
//   reason (only once aborted), a TypeError (exactly when submitted to a
//   closed pool, and then never called); no more attempts than retry allows,
//   ctx.attempt counting from 1; a task starts inside submit()/run() when a
//   slot is free;
// - at every quiescent moment (the start of a timer's turn): `active` equals
//   the user functions running, `closed` and `paused` are as the operations
//   say, and `active + pending` equals the unsettled tasks (exactly when no
//   map iteration is going on; between the running map calls and the items
//   read and not yielded otherwise); when nothing is unsettled onIdle()
//   resolves at once;
// - never more than `concurrency` functions running, distinct workerIds below
//   `concurrency`; no function starts while the pool is paused, after a
//   cancel, after close() resolved, after its task settled or its own signal
//   aborted, nor (for map) after the map's signal aborted or its loop ended;
//   a cancel aborts the ctx.signal of every running function;
//   close() resolves only once no function runs and every task has settled;
//   onIdle() only once every task that was running or unsettled when it was
//   called is done;
// - map: results in input order (input order) or each at most once
//   (completion order), each from a successful last attempt; all of them
//   when the loop ran to its end; an error that is allowed at that turn; at
//   most bufferSize items read and not yielded (one more while a yield is on
//   its way); nothing of the map runs after its loop ended; its input closed;
// - no timer of the library alive once everything settled.
import fc from "fast-check";
import { Pool, TimeoutError } from "../../mod.ts";
import type { TaskContext } from "../../mod.ts";
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

const RUNS = 1500;
const WATCHDOG_MS = 5000;
const CANCEL_MESSAGE = "The pool was closed with cancelPending";

// ---- scenarios ----------------------------------------------------------------

type Behaviour =
  | { b: "ok" }
  | { b: "sleep"; ms: number }
  | { b: "throw" }
  | { b: "reject"; ms: number }
  | { b: "flaky"; fails: number; ms: number }
  | { b: "hang" }
  | { b: "ignore"; ms: number };

/**
 * The signal of a run() or map(): none, one never aborted, one aborted before
 * the call, or after `ms`.
 */
type Abort = "none" | "never" | "before" | number;

/** -1: the next operation follows in the same tick; else a sleep of that many ms. */
type Gap = { gap: number };

type Op =
  & Gap
  & (
    | { op: "submit"; task: Behaviour }
    | { op: "run"; task: Behaviour; priority: number; abort: Abort }
    | {
      op: "map";
      items: Behaviour[];
      input: "array" | "sync" | "async";
      throwAt: number | null;
      order: "input" | "completion";
      bufferSize: number | null;
      priority: number;
      abort: Abort;
      consumer: "all" | "break" | "throw";
      after: number;
      readDelay: number;
    }
    | { op: "pause" | "resume" | "onIdle" | "abortPool" }
    | { op: "onSize"; limit: number }
    | { op: "close"; cancel: boolean }
  );

interface Scenario {
  concurrency: number;
  retry: { attempts: number; delayMs: number; jitter: boolean } | null;
  timeoutMs: number | null;
  poolSignal: "none" | "before" | "given";
  ops: Op[];
  finalCancel: boolean;
}

const ms = fc.integer({ min: 0, max: 10 });
const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  fc.constant({ b: "ok" as const }),
  fc.record({ b: fc.constant("sleep" as const), ms }),
  fc.constant({ b: "throw" as const }),
  fc.record({ b: fc.constant("reject" as const), ms }),
  fc.record({
    b: fc.constant("flaky" as const),
    fails: fc.integer({ min: 1, max: 2 }),
    ms,
  }),
  fc.constant({ b: "hang" as const }),
  fc.record({ b: fc.constant("ignore" as const), ms }),
);
/** submit() gives no ctx.signal to wait for. */
const submitBehaviour = behaviour.filter((t) => t.b !== "hang");
const abort: fc.Arbitrary<Abort> = fc.oneof(
  { weight: 2, arbitrary: fc.constant("none" as const) },
  { weight: 1, arbitrary: fc.constant("never" as const) },
  { weight: 1, arbitrary: fc.constant("before" as const) },
  { weight: 2, arbitrary: ms },
);
const gap = fc.oneof(fc.constant(-1), ms);
const priority = fc.integer({ min: -1, max: 2 });

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("submit" as const),
      task: submitBehaviour,
      gap,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("run" as const),
      task: behaviour,
      priority,
      abort,
      gap,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("map" as const),
      items: fc.array(behaviour, { maxLength: 8 }),
      input: fc.constantFrom(
        "array" as const,
        "sync" as const,
        "async" as const,
      ),
      throwAt: fc.option(fc.integer({ min: 0, max: 8 }), { freq: 4 }),
      order: fc.constantFrom("input" as const, "completion" as const),
      bufferSize: fc.option(fc.integer({ min: 1, max: 4 })),
      priority,
      abort,
      consumer: fc.constantFrom(
        "all" as const,
        "break" as const,
        "throw" as const,
      ),
      after: fc.integer({ min: 0, max: 3 }),
      readDelay: fc.integer({ min: 0, max: 5 }),
      gap,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constantFrom("pause" as const, "resume" as const),
      gap,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constantFrom("onIdle" as const, "abortPool" as const),
      gap,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("onSize" as const),
      limit: fc.integer({ min: 1, max: 3 }),
      gap,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("close" as const),
      cancel: fc.boolean(),
      gap,
    }),
  },
);

const scenario: fc.Arbitrary<Scenario> = fc.record({
  concurrency: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 1, max: 4 }) },
    { weight: 1, arbitrary: fc.constant(Infinity) },
  ),
  retry: fc.option(
    fc.record({
      attempts: fc.integer({ min: 1, max: 3 }),
      delayMs: ms,
      jitter: fc.boolean(),
    }),
    { freq: 3 },
  ),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 15 }), { freq: 2 }),
  poolSignal: fc.constantFrom(
    "none" as const,
    "before" as const,
    "given" as const,
    "given" as const,
  ),
  ops: fc.array(op, { minLength: 1, maxLength: 12 }),
  finalCancel: fc.boolean(),
});

// ---- the world as the operations made it ----------------------------------

/** A task's error: which task (or map item) and which attempt threw it. */
class TaskError extends Error {
  constructor(readonly owner: string, readonly attempt: number) {
    super(`${owner} failed at attempt ${attempt}`);
  }
}

/** A submit()/run() task or a map item: its calls and its outcome. */
interface Task {
  name: string;
  behaviour: Behaviour;
  calls: number;
  settled: boolean;
  ok: boolean;
  value: unknown;
  /** Own signal (run() tasks): its reason, and whether it aborted. */
  ownReason?: Error;
  ownAborted: boolean;
  /** Submitted after close(): must reject with a TypeError. */
  closedAtCall: boolean;
}

interface MapRun {
  name: string;
  op: Extract<Op, { op: "map" }>;
  items: Task[];
  /** Items taken from the input (its length for an array). */
  pulled: number;
  yielded: unknown[];
  running: number;
  signalAborted: boolean;
  reason: Error;
  inputError: Error;
  consumerError: Error;
  inputStarted: boolean;
  inputClosed: boolean;
  /** The consumer decided to break or throw. */
  stopping: boolean;
  finished: boolean;
  error: unknown;
  failed: boolean;
}

/** One call of a user function while it runs. */
interface Call {
  done: boolean;
  /** Its ctx.signal (run() and map() calls). */
  signal: AbortSignal | undefined;
}

class World {
  readonly violations: string[] = [];
  readonly tasks: Task[] = [];
  readonly maps: MapRun[] = [];
  /** Settle when what the pool returned settles; never reject. */
  readonly tracked: Promise<unknown>[] = [];
  readonly timers: ReturnType<typeof realSetTimeout>[] = [];
  readonly calls = new Set<Call>();
  readonly busy = new Set<number>();
  readonly poolReason = new Error("pool signal aborted");
  running = 0;
  closeRequested = false;
  cancelRequested = false;
  poolAborted = false;
  closeResolved = false;
  paused = false;

  constructor(readonly s: Scenario, readonly pool: Pool) {}

  get attempts(): number {
    return this.s.retry?.attempts ?? 1;
  }

  fail(message: string, detail?: unknown): void {
    this.violations.push(
      detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`,
    );
  }

  expect(ok: boolean, message: string, detail?: unknown): void {
    if (!ok) this.fail(message, detail);
  }

  newTask(name: string, behaviour: Behaviour): Task {
    return {
      name,
      behaviour,
      calls: 0,
      settled: false,
      ok: false,
      value: undefined,
      ownAborted: false,
      closedAtCall: false,
    };
  }

  /** Records the outcome of a promise the pool returned. */
  track(task: Task, promise: Promise<unknown>): void {
    this.tracked.push(promise.then(
      (value) => this.settle(task, true, value),
      (error) => this.settle(task, false, error),
    ));
  }

  settle(task: Task, ok: boolean, value: unknown): void {
    this.expect(!task.settled, `${task.name} settled twice`);
    task.settled = true;
    task.ok = ok;
    task.value = value;
  }

  /** A user function starts: the checks every start must pass. */
  enter(task: Task, map: MapRun | undefined, ctx?: TaskContext): Call {
    const where = task.name;
    this.expect(!this.closeResolved, `${where} started after close() resolved`);
    this.expect(!this.cancelRequested, `${where} started after a cancel`);
    this.expect(!this.pool.paused, `${where} started while paused`);
    this.expect(
      this.running < this.s.concurrency,
      `${where} started with ${this.running} running`,
    );
    this.expect(!task.settled, `${where} started after it settled`);
    this.expect(!task.ownAborted, `${where} started after its signal aborted`);
    if (map !== undefined) {
      // While the loop is being left (break, throw) a read-ahead may still
      // start an item; once the loop has ended, nothing may.
      this.expect(!map.finished, `${where} started after its loop ended`);
      this.expect(
        !map.signalAborted,
        `${where} started after its map's signal aborted`,
      );
    }
    task.calls++;
    this.expect(
      task.calls <= this.attempts,
      `${where} has ${task.calls} attempts`,
    );
    if (ctx !== undefined) {
      const id = ctx.workerId;
      this.expect(
        id >= 0 && id < this.s.concurrency && !this.busy.has(id),
        `${where} got workerId ${id}`,
        [...this.busy],
      );
      this.busy.add(id);
      this.expect(ctx.attempt === task.calls, `${where}: ctx.attempt`, {
        attempt: ctx.attempt,
        calls: task.calls,
      });
    }
    this.running++;
    if (map !== undefined) map.running++;
    const call = { done: false, signal: ctx?.signal };
    this.calls.add(call);
    return call;
  }

  leave(call: Call, map: MapRun | undefined, ctx?: TaskContext): void {
    call.done = true;
    this.calls.delete(call);
    if (ctx !== undefined) this.busy.delete(ctx.workerId);
    this.running--;
    if (map !== undefined) map.running--;
  }

  /** Calls a task's function as its behaviour says, counting it as running. */
  call(
    task: Task,
    map: MapRun | undefined,
    ctx: TaskContext | undefined,
  ): unknown {
    const entered = this.enter(task, map, ctx);
    const leave = () => this.leave(entered, map, ctx);
    let result: unknown;
    try {
      result = perform(task, ctx?.signal);
    } catch (error) {
      leave();
      throw error;
    }
    if (result instanceof Promise) return result.finally(leave);
    leave();
    return result;
  }
}

/**
 * Does what a task's behaviour says for its current attempt (`task.calls`);
 * a task's value is its name.
 */
function perform(task: Task, signal: AbortSignal | undefined): unknown {
  const b = task.behaviour;
  const attempt = task.calls;
  const error = () => new TaskError(task.name, attempt);
  switch (b.b) {
    case "ok":
      return task.name;
    case "throw":
      throw error();
    case "flaky":
      if (attempt <= b.fails) throw error();
      return realSleep(b.ms).then(() => task.name);
    case "sleep":
      return realSleep(b.ms, signal).then(() => {
        if (signal?.aborted) throw signal.reason;
        return task.name;
      });
    case "reject":
      return realSleep(b.ms).then(() => {
        throw error();
      });
    case "ignore":
      return realSleep(b.ms).then(() => task.name);
    case "hang":
      return new Promise((_, reject) => {
        if (signal!.aborted) return reject(signal!.reason);
        signal!.addEventListener("abort", () => reject(signal!.reason), {
          once: true,
        });
      });
  }
}

/** Whether attempt `attempt` of `b` may return its value. */
function canSucceed(b: Behaviour, attempt: number): boolean {
  if (b.b === "flaky") return attempt > b.fails;
  return b.b === "ok" || b.b === "sleep" || b.b === "ignore";
}

function isCancel(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError" &&
    error.message === CANCEL_MESSAGE;
}

function isClosed(error: unknown): boolean {
  return error instanceof TypeError && /pool is closed/.test(error.message);
}

/**
 * Why `error` may not end `task` (or the map item `task`), or `undefined`
 * when it may: its own error from its last attempt, a timeout, a cancel, a
 * signal's reason, each only when it can have happened.
 */
function badRejection(
  w: World,
  task: Task,
  error: unknown,
): string | undefined {
  if (error instanceof TaskError) {
    if (error.owner !== task.name) return "another task's error";
    if (error.attempt !== task.calls) return "not the last attempt's error";
    return canSucceed(task.behaviour, error.attempt)
      ? "never thrown"
      : undefined;
  }
  if (error instanceof TimeoutError) {
    return w.s.timeoutMs !== null && task.calls > 0 ? undefined : "timeout";
  }
  if (isCancel(error)) return w.cancelRequested ? undefined : "cancel";
  if (error === w.poolReason) return w.poolAborted ? undefined : "pool reason";
  if (task.ownReason !== undefined && error === task.ownReason) {
    return task.ownAborted ? undefined : "own reason";
  }
  return "unexpected error";
}

// ---- operations ----------------------------------------------------------------

function submitOp(w: World, behaviour: Behaviour): void {
  const { pool } = w;
  const task = w.newTask(`s${w.tasks.length}`, behaviour);
  w.tasks.push(task);
  const closed = w.closeRequested;
  const free = startsAtOnce(w);
  w.track(task, pool.submit(() => w.call(task, undefined, undefined)));
  checkCall(w, task, closed, free);
}

function runOp(w: World, o: Extract<Op, { op: "run" }>): void {
  const { pool } = w;
  const task = w.newTask(`r${w.tasks.length}`, o.task);
  w.tasks.push(task);
  const reason = task.ownReason = new Error(`${task.name} aborted`);
  const signal = makeSignal(w, o.abort, reason, () => (task.ownAborted = true));
  const closed = w.closeRequested;
  const free = !task.ownAborted && startsAtOnce(w);
  w.track(
    task,
    pool.run((ctx) => w.call(task, undefined, ctx), {
      signal,
      priority: o.priority,
    }),
  );
  checkCall(w, task, closed, free);
  if (!closed && task.ownAborted) {
    w.tracked.push(
      Promise.resolve().then(() =>
        w.expect(
          task.settled && !task.ok && task.value === task.ownReason &&
            task.calls === 0,
          `${task.name}: run() with an aborted signal rejects with its reason`,
        )
      ),
    );
  }
}

/** The signal `a` asks for; `aborting` runs just before it aborts. */
function makeSignal(
  w: World,
  a: Abort,
  reason: Error,
  aborting: () => void,
): AbortSignal | undefined {
  if (a === "none") return undefined;
  const controller = new AbortController();
  const abort = () => {
    aborting();
    controller.abort(reason);
  };
  if (a === "before") abort();
  else if (a !== "never") w.timers.push(realSetTimeout(abort, a));
  return controller.signal;
}

/** Whether a task submitted now must start inside the call. */
function startsAtOnce(w: World): boolean {
  const { pool } = w;
  return !pool.closed && !pool.paused && pool.pending === 0 &&
    pool.active < w.s.concurrency;
}

function checkCall(w: World, task: Task, closed: boolean, free: boolean) {
  task.closedAtCall = closed;
  if (closed) {
    w.expect(task.calls === 0, `${task.name} called on a closed pool`);
    w.tracked.push(
      Promise.resolve().then(() =>
        w.expect(
          task.settled && !task.ok && isClosed(task.value),
          `${task.name} on a closed pool rejects with a TypeError`,
        )
      ),
    );
  } else if (free) {
    w.expect(task.calls === 1, `${task.name} did not start inside the call`);
  }
}

function mapOp(w: World, o: Extract<Op, { op: "map" }>): void {
  const name = `m${w.maps.length}`;
  const m: MapRun = {
    name,
    op: o,
    items: o.items.map((b, i) => w.newTask(`${name}:${i}`, b)),
    pulled: 0,
    yielded: [],
    running: 0,
    signalAborted: false,
    reason: new Error(`${name} aborted`),
    inputError: new Error(`${name} input broke`),
    consumerError: new Error(`${name} consumer threw`),
    inputStarted: false,
    inputClosed: false,
    stopping: false,
    finished: false,
    error: undefined,
    failed: false,
  };
  w.maps.push(m);
  const signal = makeSignal(w, o.abort, m.reason, () => {
    m.signalAborted = true;
  });
  const fn = (i: number, ctx: TaskContext) => {
    w.expect(ctx.index === i, `${m.items[i].name}: ctx.index ${ctx.index}`);
    return w.call(m.items[i], m, ctx);
  };
  const it = w.pool.map(fn, mapInput(w, m), {
    order: o.order,
    signal,
    priority: o.priority,
    ...(o.bufferSize === null ? {} : { bufferSize: o.bufferSize }),
  });
  w.tracked.push(consume(w, m, it));
}

/** The map's input: an array, or a generator that counts what is taken. */
function mapInput(
  w: World,
  m: MapRun,
): Iterable<number> | AsyncIterable<number> {
  const n = m.items.length;
  const indexes = m.items.map((_, i) => i);
  if (m.op.input === "array") {
    m.pulled = n;
    return indexes;
  }
  const buffer = m.op.bufferSize ?? 1024;
  const take = (i: number): number => {
    if (i === m.op.throwAt) throw m.inputError;
    m.pulled++;
    // One more while a yielded result is on its way to the loop body.
    w.expect(
      m.pulled - m.yielded.length <= buffer + 1,
      `${m.name} read ${m.pulled} items with ${m.yielded.length} yielded`,
    );
    return i;
  };
  if (m.op.input === "sync") {
    return (function* () {
      m.inputStarted = true;
      try {
        for (let i = 0; i < n; i++) yield take(i);
      } finally {
        m.inputClosed = true;
      }
    })();
  }
  return (async function* () {
    m.inputStarted = true;
    try {
      for (let i = 0; i < n; i++) {
        await null;
        yield take(i);
      }
    } finally {
      m.inputClosed = true;
    }
  })();
}

/** Reads a map as its consumer says; checks each result as it comes. */
async function consume(
  w: World,
  m: MapRun,
  it: AsyncGenerator<unknown>,
): Promise<void> {
  const { order, consumer, after, readDelay } = m.op;
  try {
    for await (const value of it) {
      const i = m.items.findIndex((t) => t.name === value);
      const item = m.items[i];
      if (order === "input") {
        w.expect(i === m.yielded.length, `${m.name} out of order`, {
          value,
          yielded: m.yielded,
        });
      } else {
        w.expect(
          i >= 0 && !m.yielded.includes(value),
          `${m.name} yielded ${value} again or unknown`,
        );
      }
      if (item !== undefined) {
        w.expect(
          item.calls > 0 && canSucceed(item.behaviour, item.calls),
          `${item.name} yielded without a successful last attempt`,
        );
      }
      m.yielded.push(value);
      if (consumer !== "all" && m.yielded.length > after) {
        m.stopping = true;
        if (consumer === "break") break;
        throw m.consumerError;
      }
      if (readDelay > 0) await realSleep(readDelay);
    }
  } catch (error) {
    m.failed = true;
    m.error = error;
  } finally {
    m.finished = true;
    w.expect(m.running === 0, `${m.name} still runs after its loop ended`);
  }
}

/** Why the map's end is not allowed, or `undefined`. */
function badMapEnd(w: World, m: MapRun): string | undefined {
  const { order, consumer, after, input, throwAt } = m.op;
  const n = m.items.length;
  const yielded = m.yielded.length;
  const throws = input !== "array" && throwAt !== null && throwAt < n;
  if (!m.failed) {
    if (consumer === "break" && m.stopping) {
      return yielded === after + 1 ? undefined : "break at the wrong item";
    }
    return yielded === n && !throws ? undefined : "ended early";
  }
  const error = m.error;
  if (error === m.consumerError) {
    return consumer === "throw" && yielded === after + 1
      ? undefined
      : "consumer error";
  }
  if (error === m.inputError) {
    if (!throws) return "input error";
    return (order === "input" ? yielded === throwAt : yielded <= throwAt!)
      ? undefined
      : "input error at the wrong turn";
  }
  if (error === m.reason) return m.signalAborted ? undefined : "map reason";
  if (isClosed(error)) return w.closeRequested ? undefined : "closed";
  if (error instanceof TaskError) {
    const i = m.items.findIndex((t) => t.name === error.owner);
    if (i < 0) return "another map's error";
    if (order === "input" && i !== yielded) return "error at the wrong turn";
    return badRejection(w, m.items[i], error);
  }
  if (error instanceof TimeoutError) {
    return w.s.timeoutMs !== null ? undefined : "timeout";
  }
  if (isCancel(error)) return w.cancelRequested ? undefined : "cancel";
  if (error === w.poolReason) return w.poolAborted ? undefined : "pool reason";
  return "unexpected error";
}

function onIdleOp(w: World): void {
  const calls = [...w.calls];
  const unsettled = w.tasks.filter((t) => !t.settled);
  w.tracked.push(
    w.pool.onIdle().then(() => {
      w.expect(
        calls.every((c) => c.done),
        "onIdle() resolved while a task running when it was called still ran",
      );
      w.expect(
        unsettled.every((t) => t.settled),
        "onIdle() resolved before a task unsettled when it was called",
        unsettled.filter((t) => !t.settled).map((t) => t.name),
      );
    }),
  );
}

/** After a cancel: every running call's ctx.signal has aborted. */
function checkCancelled(w: World): void {
  for (const call of w.calls) {
    w.expect(
      call.signal?.aborted !== false,
      "a running task's ctx.signal did not abort on cancel",
    );
  }
}

function closeOp(w: World, cancel: boolean): Promise<void> {
  w.closeRequested = true;
  w.paused = false;
  if (cancel) w.cancelRequested = true;
  const closing = w.pool.close({ cancelPending: cancel });
  if (cancel) checkCancelled(w);
  w.tracked.push(closing.then(() => {
    w.expect(w.running === 0, "close() resolved while a task runs");
    w.expect(
      w.tasks.every((t) => t.settled || t.closedAtCall),
      "close() resolved before every task settled",
      w.tasks.filter((t) => !t.settled).map((t) => t.name),
    );
    w.closeResolved = true;
  }));
  return closing;
}

function apply(w: World, o: Op, controller: AbortController): void {
  const { pool } = w;
  switch (o.op) {
    case "submit":
      return submitOp(w, o.task);
    case "run":
      return runOp(w, o);
    case "map":
      return mapOp(w, o);
    case "pause":
      pool.pause();
      if (!w.closeRequested) w.paused = true;
      return;
    case "resume":
      pool.resume();
      w.paused = false;
      return;
    case "onIdle":
      return onIdleOp(w);
    case "onSize":
      w.tracked.push(pool.onSizeLessThan(o.limit));
      return;
    case "abortPool":
      if (w.s.poolSignal !== "given" || controller.signal.aborted) return;
      w.closeRequested = w.cancelRequested = w.poolAborted = true;
      w.paused = false;
      controller.abort(w.poolReason);
      checkCancelled(w);
      return;
    case "close":
      void closeOp(w, o.cancel);
  }
}

// ---- observations ------------------------------------------------------------

/**
 * At a quiescent moment (no microtask left of what came before): the
 * pool's counts against the world's.
 */
async function observe(w: World): Promise<void> {
  const { pool } = w;
  w.expect(pool.active === w.running, "active is not the tasks running", {
    active: pool.active,
    running: w.running,
  });
  w.expect(pool.closed === w.closeRequested, "closed");
  w.expect(pool.paused === w.paused, "paused");
  const unsettled = w.tasks.filter((t) => !t.settled).length;
  const mapJobs = pool.active + pool.pending - unsettled;
  const live = w.maps.filter((m) => !m.finished);
  const runningMap = live.reduce((n, m) => n + m.running, 0);
  const readMap = live.reduce((n, m) => n + m.pulled - m.yielded.length, 0);
  w.expect(
    mapJobs >= runningMap && mapJobs <= readMap,
    "active + pending is not the unsettled tasks",
    {
      active: pool.active,
      pending: pool.pending,
      unsettled,
      runningMap,
      readMap,
    },
  );
  if (pool.active + pool.pending === 0 && live.length === 0) {
    let idle = false;
    pool.onIdle().then(() => (idle = true));
    await null;
    await null;
    w.expect(idle, "onIdle() does not resolve at once on an idle pool");
  }
}

// ---- a run ---------------------------------------------------------------------

async function runScenario(s: Scenario): Promise<void> {
  const watch = new TimerWatch();
  watch.install();
  const controller = new AbortController();
  if (s.poolSignal === "before") controller.abort(new Error("before"));
  let pool: Pool | undefined;
  let w: World | undefined;
  try {
    pool = new Pool({
      concurrency: s.concurrency,
      ...(s.retry === null ? {} : { retry: s.retry }),
      ...(s.timeoutMs === null ? {} : { timeoutMs: s.timeoutMs }),
      ...(s.poolSignal === "none" ? {} : { signal: controller.signal }),
    });
    const world = w = new World(s, pool);
    if (s.poolSignal === "before") {
      w.closeRequested = w.cancelRequested = w.poolAborted = true;
    }
    for (const o of s.ops) {
      apply(world, o, controller);
      if (o.gap >= 0) {
        await realSleep(o.gap);
        await observe(world);
      }
      check(w.violations.length === 0, w.violations.join("\n"));
    }
    const hangs = s.ops.some((o) =>
      (o.op === "run" && o.task.b === "hang") ||
      (o.op === "map" && o.items.some((t) => t.b === "hang"))
    );
    await settlesWithin(
      closeOp(world, s.finalCancel || hangs),
      WATCHDOG_MS,
      "close()",
    );
    await settlesWithin(
      Promise.all(world.tracked),
      WATCHDOG_MS,
      "every promise of the pool",
    );
    await realSleep(0);
    await observe(world);
    judge(world, watch);
    check(w.violations.length === 0, w.violations.join("\n"));
  } finally {
    for (const timer of w?.timers ?? []) realClearTimeout(timer);
    pool?.close({ cancelPending: true }); // after a failure: best effort
    watch.uninstall();
  }
}

/** The final outcomes, once everything settled. */
function judge(w: World, watch: TimerWatch): void {
  const { pool } = w;
  check(pool.active === 0 && pool.pending === 0, "idle at the end", {
    active: pool.active,
    pending: pool.pending,
  });
  check(w.running === 0, "a task runs at the end");
  check(watch.live === 0, `${watch.live} library timers alive at the end`);
  for (const task of w.tasks) {
    check(task.settled, `${task.name} never settled`);
    if (task.ok) {
      check(
        task.value === task.name && task.calls > 0 &&
          canSucceed(task.behaviour, task.calls),
        `${task.name} resolved wrongly`,
        { value: String(task.value), calls: task.calls },
      );
    } else if (isClosed(task.value)) {
      check(task.closedAtCall, `${task.name} rejected with a TypeError`);
    } else {
      const bad = badRejection(w, task, task.value);
      check(bad === undefined, `${task.name} rejected: ${bad}`, {
        error: String(task.value),
        calls: task.calls,
      });
    }
  }
  for (const m of w.maps) {
    const bad = badMapEnd(w, m);
    check(bad === undefined, `${m.name} ended wrongly: ${bad}`, {
      error: String(m.error),
      yielded: m.yielded,
    });
    check(!m.inputStarted || m.inputClosed, `${m.name} left its input open`);
  }
}

Deno.test({
  name: "Pool keeps its promises under random operations, failures and cancels",
  ignore: !enabled("pool"),
  fn: () => fuzz("pool", scenario, runScenario, RUNS),
});
