/**
 * `ThreadPool`: the exported functions of a module, run on other threads.
 *
 * @module
 */

import { Fifo } from "../_fifo.ts";
import { abortError } from "../errors.ts";
import {
  assertBoolean,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  show,
} from "../_validate.ts";
import type { Spawner, Thread, ThreadEvents } from "./_spawner.ts";
import {
  assertThreads,
  type Isolation,
  logicalCores,
  spawnerFor,
} from "./_thread.ts";
import { ThreadError } from "./thread_error.ts";
import { assertProcesses } from "./_process.ts";

/** Options of {@linkcode ThreadPool}. */
export interface ThreadPoolOptions {
  /**
   * Threads at most; they start when calls need them and are reused.
   * @default {the number of logical cores}
   */
  size?: number;
  /**
   * Where calls run. `"thread"`: threads (module Web Workers, or
   * `node:worker_threads` in Node). `"process"`: one child process of the
   * same runtime per slot (`Deno.Command(Deno.execPath())` in Deno,
   * `node:child_process` in Node and Bun), killed with `SIGKILL` when a call
   * aborts, so a busy loop stops for real where terminating a thread does
   * not (Deno 2.9). In `"process"` mode:
   * - messages are serialized with `node:v8` (the structured-clone types
   *   survive) and `transfer` lists copy instead of moving;
   * - a child starts in tens of ms (a thread in a few);
   * - inside the child, `console` and writes to stdout go to stderr: stdout
   *   carries the calls' frames, and anything else written to it fails the
   *   call with a `ThreadError`;
   * - in Deno the child runs with every permission (`deno eval`) and the
   *   parent needs `--allow-run` (without it, calls reject with a
   *   `ThreadError`); in Node the child gets none of the parent's
   *   `execArgv` (no loaders).
   * Not available in browsers and Cloudflare Workers.
   * @default {"thread"}
   */
  isolation?: "thread" | "process";
}

/** Options of {@linkcode ThreadPool.prototype.run}. */
export interface ThreadRunOptions {
  /**
   * Aborting it drops a waiting call, or terminates the thread running it
   * (a new one replaces it): the call rejects with the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Objects moved to the thread instead of copied (`ArrayBuffer`s,
   * `MessagePort`s, streams…); the caller's copies are detached. A task moves
   * its result back with {@linkcode transfer}.
   */
  transfer?: Transferable[];
}

/** Options of {@linkcode ThreadPool.prototype.close}. */
export interface ThreadCloseOptions {
  /**
   * `false`: waiting and running calls finish first. `true`: they reject at
   * once with an `AbortError` and every thread is terminated.
   * @default {false}
   */
  force?: boolean;
}

/** What {@linkcode ThreadPool.prototype.stats} reports. */
export interface ThreadPoolStats {
  /** Threads at most (0 until the runtime's core count is known). */
  readonly size: number;
  /** Calls running on a thread now. */
  readonly busy: number;
  /** Calls waiting for a thread. */
  readonly queued: number;
  /** Calls that returned a value. */
  readonly completed: number;
  /** Calls that rejected (a task's error, a dead thread, an abort). */
  readonly failed: number;
  /** Threads started to replace one that died or was terminated. */
  readonly restarts: number;
}

/** Any task: an exported function of the module, called with one argument. */
// deno-lint-ignore no-explicit-any
export type AnyTask = (arg: any) => unknown;
/** The names of a module's exported functions. */
export type TaskName<M> =
  & {
    [K in keyof M]: M[K] extends AnyTask ? K : never;
  }[keyof M]
  & string;
/** The argument of task `K` of module `M`. */
export type TaskArg<M, K extends keyof M> = M[K] extends
  (arg: infer A) => unknown ? A : never;
/** The result of task `K` of module `M`, once settled. */
export type TaskResult<M, K extends keyof M> = M[K] extends
  (...args: never[]) => infer R ? Awaited<R> : never;

const TRANSFER = Symbol.for("sluice.transfer");

/**
 * Returned by a task: `value` goes back to the caller with `list`'s objects
 * moved, not copied. Typed as `value`, so the task keeps its result type.
 *
 * @example A task that returns a buffer without copying it
 * ```ts ignore
 * import { transfer } from "sluice/threads";
 * export function fill(size: number): Uint8Array {
 *   const bytes = new Uint8Array(size).fill(7);
 *   return transfer(bytes, [bytes.buffer]);
 * }
 * ```
 */
export function transfer<T>(value: T, list: Transferable[]): T {
  return { [TRANSFER]: true, value, transfer: list } as unknown as T;
}

const OPEN = 0;
const CLOSING = 1;
const CLOSED = 2;

interface Call {
  readonly id: number;
  readonly name: string;
  readonly arg: unknown;
  readonly transfer: Transferable[];
  readonly signal: AbortSignal | undefined;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  onAbort: (() => void) | undefined;
  slot: Slot | undefined;
  done: boolean;
}

interface Slot {
  thread: Thread | undefined;
  /** The call the thread runs. */
  call: Call | undefined;
  /**
   * The call sent after it, waiting in the thread's inbox, so the thread
   * starts it without a round trip (W7 tiny tasks). Back to the pool's queue
   * if the thread ends first. Aborted there, it rejects at once, and the
   * thread is replaced when its turn would come (it must not run).
   */
  next: Call | undefined;
  /** It ran before (a new thread here is a restart). */
  used: boolean;
  /**
   * Shared with the thread (when the pool sends calls ahead): [0] the call it
   * started (`gateId`; negated when it skipped it), [1] the call in its inbox
   * that was aborted. Each side writes, then reads the other's cell, so at
   * least one of them sees the abort in time.
   */
  gate: Int32Array | undefined;
}

/** A call's id in a gate cell (never 0: 0 is "none"). */
const gateId = (id: number): number => (id & 0x3fffffff) + 1;

type Settled = { id: number; ok: boolean; value?: unknown; error?: unknown };

/**
 * A pool of threads running the exported functions of one ES module: CPU
 * work off the event loop, on every core. Threads start lazily and are
 * reused; aborting a call (or a stage's `timeoutMs`) terminates the thread
 * that runs it, so CPU-bound code stops for real.
 *
 * The module is a plain ES module; its exported functions are the tasks,
 * each called with one argument. Module Web Workers run it in Deno, Bun and
 * browsers, `node:worker_threads` in Node.
 *
 * @typeParam M The task module's type (`typeof import("./tasks.ts")`), for
 * typed arguments and results.
 *
 * @example A pipeline stage on threads
 * ```ts ignore
 * import { map, pipeline } from "sluice";
 * import { ThreadPool } from "sluice/threads";
 *
 * await using threads = new ThreadPool<typeof import("./tasks.ts")>(
 *   new URL("./tasks.ts", import.meta.url),
 *   { size: 2 },
 * );
 * const hashes = await pipeline(
 *   map(threads.task("hash"), { concurrency: 2, timeoutMs: 5_000 }),
 * ).run(["a", "b"]).collect();
 * ```
 */
export class ThreadPool<M extends object = Record<string, AnyTask>>
  implements AsyncDisposable {
  readonly #moduleURL: string;
  #size: number;
  readonly #isolation: Isolation;
  /** Calls may wait in a busy thread's inbox (threads with shared memory). */
  readonly #sendAhead: boolean;
  #spawner: Spawner | undefined;
  #loading: Promise<void> | undefined;
  /** The module could not be loaded (or the runtime has no threads). */
  #broken: { error: unknown } | undefined;
  readonly #slots: Slot[] = [];
  readonly #byThread = new Map<Thread, Slot>();
  readonly #queue = new Fifo<Call>();
  #queued = 0;
  #busy = 0;
  /** Calls waiting in a busy thread's inbox (`Slot.next`). */
  #prefetched = 0;
  #nextId = 0;
  #state = OPEN;
  #completed = 0;
  #failed = 0;
  #restarts = 0;
  #onIdle: (() => void)[] = [];
  readonly #events: ThreadEvents = {
    message: (thread, data) => this.#onMessage(thread, data),
    died: (thread, reason, error) => this.#onDeath(thread, reason, error),
  };

  /**
   * Creates the pool; no thread (or process) starts before a call needs one.
   *
   * @param moduleURL The task module: a `URL` or an absolute URL string
   *   (`new URL("./tasks.ts", import.meta.url)`). TypeScript where the
   *   runtime runs it (Deno, Bun), JavaScript everywhere.
   * @param options Its size and isolation.
   * @throws {TypeError} When the runtime has no threads (Cloudflare Workers)
   *   or, with `isolation: "process"`, no child processes (browsers,
   *   Cloudflare Workers); when `moduleURL` is not a URL, or `isolation` is
   *   neither `"thread"` nor `"process"`.
   * @throws {RangeError} When `size` is not a positive integer.
   */
  constructor(moduleURL: URL | string, options?: ThreadPoolOptions) {
    assertOptions("options", options, "new ThreadPool()", [
      "size",
      "isolation",
    ]);
    const { size, isolation = "thread" } = options ?? {};
    assertOneOf("isolation", isolation, ["thread", "process"]);
    if (isolation === "process") assertProcesses();
    else assertThreads();
    let url: URL;
    try {
      url = new URL(moduleURL);
    } catch {
      throw new TypeError(
        `'moduleURL' must be a URL or an absolute URL string (new URL("./tasks.ts", import.meta.url)): current value is ${
          show(moduleURL)
        }`,
      );
    }
    if (size !== undefined) assertInteger("size", size, 1);
    this.#isolation = isolation;
    this.#sendAhead = isolation === "thread" &&
      typeof SharedArrayBuffer === "function";
    this.#moduleURL = url.href;
    this.#size = size ?? 0;
  }

  /**
   * A stage function calling task `name` on one thread per call: for `map`,
   * `filter`, a `Pool`, or a `Batcher`'s batch function. The stage's
   * `ctx.signal` (its `timeoutMs`, an abort) terminates the thread.
   *
   * @param name An exported function of the module.
   * @returns `(item, ctx?) => Promise<result>`.
   */
  task<K extends TaskName<M>>(
    name: K,
  ): (
    item: TaskArg<M, K>,
    ctx?: { readonly signal?: AbortSignal },
  ) => Promise<TaskResult<M, K>> {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `'name' must be the name of an exported function: current value is ${
          show(name)
        }`,
      );
    }
    return (item, ctx) => this.run(name, item, { signal: ctx?.signal });
  }

  /**
   * Calls task `name` with `arg` on a thread. Every promise settles: with the
   * task's value, its error (same `name`, `message` and `stack`), a
   * {@linkcode ThreadError} when the thread died, or the abort reason.
   *
   * @param name An exported function of the module.
   * @param arg Its argument (structured-cloned, or moved with `transfer`).
   * @param options `signal` and `transfer`.
   * @returns The task's result.
   */
  run<K extends TaskName<M>>(
    name: K,
    arg: TaskArg<M, K>,
    options?: ThreadRunOptions,
  ): Promise<TaskResult<M, K>> {
    assertOptions("options", options, "ThreadPool.run()", [
      "signal",
      "transfer",
    ]);
    const { signal, transfer = [] } = options ?? {};
    assertSignal(signal);
    if (!Array.isArray(transfer)) {
      return Promise.reject(
        new TypeError(
          `'transfer' must be an array of transferable objects: current value is ${
            show(transfer)
          }`,
        ),
      );
    }
    if (this.#state !== OPEN) {
      return Promise.reject(
        new TypeError(
          "The thread pool is closed: it takes no new call after close()",
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const call: Call = {
        id: this.#nextId++,
        name,
        arg,
        transfer,
        signal,
        resolve: resolve as (value: unknown) => void,
        reject,
        onAbort: undefined,
        slot: undefined,
        done: false,
      };
      if (signal !== undefined) {
        call.onAbort = () => this.#abort(call, signal.reason);
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
      this.#queue.push(call);
      this.#queued++;
      this.#dispatch();
    });
  }

  /** Counters of the pool now. */
  stats(): ThreadPoolStats {
    return {
      size: this.#size,
      busy: this.#busy,
      queued: this.#queued + this.#prefetched,
      completed: this.#completed,
      failed: this.#failed,
      restarts: this.#restarts,
    };
  }

  /**
   * Closes the pool: no new call; waiting and running calls finish (or, with
   * `force`, reject at once), then every thread ends.
   *
   * @param options `force`.
   * @returns A promise that resolves once every thread has ended.
   */
  close(options?: ThreadCloseOptions): Promise<void> {
    assertOptions("options", options, "ThreadPool.close()", ["force"]);
    const { force = false } = options ?? {};
    assertBoolean("force", force);
    if (this.#state === CLOSED) return Promise.resolve();
    if (this.#state === OPEN) this.#state = CLOSING;
    if (force) {
      const reason = abortError("The thread pool was closed");
      // Slots first: their waiting calls come back to the queue.
      for (const slot of this.#slots) {
        if (slot.call !== undefined) this.#stopSlot(slot, reason);
      }
      this.#rejectQueued(reason);
    }
    const idle = new Promise<void>((resolve) => this.#onIdle.push(resolve));
    this.#maybeEnd();
    return idle;
  }

  /** `await using` closes the pool, letting calls finish. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- scheduling ----------------------------------------------------------

  /** Starts waiting calls on free threads. */
  #dispatch(): void {
    if (this.#broken !== undefined) return this.#failAll(this.#broken.error);
    if (this.#spawner === undefined) {
      this.#loading ??= this.#load();
      return;
    }
    while (this.#queued > 0) {
      const slot = this.#freeSlot() ?? this.#busySlot();
      if (slot === undefined) return;
      const call = this.#queue.shift()!;
      if (call.done) continue; // aborted while waiting
      this.#queued--;
      if (slot.call === undefined) this.#start(slot, call);
      else this.#send(slot, call);
    }
    this.#maybeEnd();
  }

  async #load(): Promise<void> {
    try {
      const [spawner, cores] = await Promise.all([
        spawnerFor(this.#moduleURL, this.#isolation),
        this.#size > 0 ? this.#size : logicalCores(),
      ]);
      this.#spawner = spawner;
      this.#size = cores;
    } catch (error) {
      this.#broken = { error };
    }
    this.#dispatch();
  }

  #freeSlot(): Slot | undefined {
    for (const slot of this.#slots) if (slot.call === undefined) return slot;
    if (this.#slots.length >= this.#size) return undefined;
    const slot: Slot = {
      thread: undefined,
      call: undefined,
      next: undefined,
      used: false,
      gate: undefined,
    };
    this.#slots.push(slot);
    return slot;
  }

  /** Every thread is busy: one with room in its inbox. */
  #busySlot(): Slot | undefined {
    if (!this.#sendAhead) return undefined;
    for (const slot of this.#slots) {
      if (slot.next === undefined && slot.gate !== undefined) return slot;
    }
    return undefined;
  }

  /** Sends `call` to the busy thread of `slot`, to run after its call. */
  #send(slot: Slot, call: Call): void {
    slot.next = call;
    call.slot = slot;
    this.#prefetched++;
    try {
      slot.thread!.post(
        { id: call.id, name: call.name, arg: call.arg },
        call.transfer,
      );
    } catch (error) {
      slot.next = undefined;
      call.slot = undefined;
      this.#prefetched--;
      this.#settle(call, false, error);
    }
  }

  #start(slot: Slot, call: Call): void {
    if (slot.thread === undefined) {
      if (slot.used) this.#restarts++;
      slot.thread = this.#spawner!.spawn(this.#events);
      this.#byThread.set(slot.thread, slot);
      slot.gate = undefined;
      if (this.#sendAhead) {
        slot.gate = new Int32Array(new SharedArrayBuffer(8));
        slot.thread.post({ gate: slot.gate }, []);
      }
    }
    slot.used = true;
    slot.call = call;
    call.slot = slot;
    this.#busy++;
    slot.thread.ref(true);
    try {
      slot.thread.post(
        { id: call.id, name: call.name, arg: call.arg },
        call.transfer,
      );
    } catch (error) {
      // The argument cannot be cloned: the call fails, the thread stays.
      this.#free(slot);
      this.#settle(call, false, error);
    }
  }

  #onMessage(thread: Thread, data: unknown): void {
    const slot = this.#byThread.get(thread);
    if (slot === undefined) return;
    const message = data as Settled & { dead?: string; load?: boolean };
    if (message.dead !== undefined) {
      return this.#onDeath(thread, message.dead, undefined);
    }
    const call = slot.call;
    if (call === undefined || call.id !== message.id) return;
    this.#free(slot);
    if (call.done) {
      // Settled already (force close raced with its answer).
    } else if (message.ok) this.#settle(call, true, message.value);
    else {
      const error = revive(message.error);
      if (message.load) this.#broken = { error };
      this.#settle(call, false, error);
    }
    this.#dispatch();
  }

  #onDeath(thread: Thread, reason: string, error: unknown): void {
    const slot = this.#byThread.get(thread);
    if (slot === undefined) return;
    thread.terminate();
    this.#byThread.delete(thread);
    slot.thread = undefined;
    this.#requeue(slot);
    const call = slot.call;
    if (call !== undefined) {
      this.#free(slot);
      this.#settle(
        call,
        false,
        new ThreadError(`Task "${call.name}": ${reason}`, { cause: error }),
      );
    }
    this.#dispatch();
  }

  /** The call's signal aborted. */
  #abort(call: Call, reason: unknown): void {
    if (call.done) return;
    const slot = call.slot;
    if (slot === undefined) {
      this.#queued--; // left in the queue, skipped when it comes up
      this.#settle(call, false, reason);
    } else if (slot.next === call) {
      // In a busy thread's inbox: the thread skips it, or (if it started it
      // already) is terminated once the call before it has answered.
      Atomics.store(slot.gate!, 1, gateId(call.id));
      this.#prefetched--;
      this.#settle(call, false, reason);
    } else this.#stopSlot(slot, reason);
    this.#dispatch();
  }

  /** Terminates the thread running `slot`'s call; the call rejects. */
  #stopSlot(slot: Slot, reason: unknown): void {
    const call = slot.call!;
    const thread = slot.thread;
    if (thread !== undefined) {
      thread.terminate();
      this.#byThread.delete(thread);
      slot.thread = undefined;
    }
    this.#requeue(slot);
    this.#free(slot);
    if (!call.done) this.#settle(call, false, reason);
  }

  /** The slot's call ended: the call waiting in its inbox (if any) runs. */
  #free(slot: Slot): void {
    slot.call!.slot = undefined;
    const next = slot.next;
    slot.next = undefined;
    slot.call = next;
    if (next !== undefined) {
      if (!next.done) {
        this.#prefetched--;
        return;
      }
      // Aborted in the inbox: skipped by the thread, unless it started.
      slot.call = undefined;
      next.slot = undefined;
      const thread = slot.thread;
      const started = Atomics.load(slot.gate!, 0) === gateId(next.id);
      if (thread !== undefined && started) {
        thread.terminate();
        this.#byThread.delete(thread);
        slot.thread = undefined;
      }
    }
    this.#busy--;
    slot.thread?.ref(false);
  }

  /** The slot's thread ended: the call in its inbox goes back to the queue. */
  #requeue(slot: Slot): void {
    const next = slot.next;
    if (next === undefined) return;
    slot.next = undefined;
    next.slot = undefined;
    if (next.done) return; // aborted while it waited (no longer counted)
    this.#prefetched--;
    this.#queue.unshift(next);
    this.#queued++;
  }

  #settle(call: Call, ok: boolean, value: unknown): void {
    call.done = true;
    if (call.onAbort !== undefined) {
      call.signal!.removeEventListener("abort", call.onAbort);
      call.onAbort = undefined;
    }
    if (ok) {
      this.#completed++;
      call.resolve(value);
    } else {
      this.#failed++;
      call.reject(value);
    }
  }

  /** The module cannot load: every waiting call rejects with its error. */
  #failAll(error: unknown): void {
    this.#rejectQueued(error);
    this.#maybeEnd();
  }

  /** Every call waiting in the queue rejects with `reason`. */
  #rejectQueued(reason: unknown): void {
    for (
      let c = this.#queue.shift();
      c !== undefined;
      c = this.#queue.shift()
    ) {
      if (!c.done) this.#settle(c, false, reason);
    }
    this.#queued = 0;
  }

  /** Closing, and nothing left: every thread ends. */
  #maybeEnd(): void {
    if (
      this.#state !== CLOSING || this.#queued > 0 || this.#busy > 0 ||
      this.#prefetched > 0
    ) return;
    if (
      this.#loading !== undefined && this.#spawner === undefined &&
      this.#broken === undefined
    ) return; // ends once loaded
    this.#state = CLOSED;
    for (const slot of this.#slots) {
      slot.thread?.terminate();
      slot.thread = undefined;
    }
    this.#byThread.clear();
    const waiting = this.#onIdle;
    this.#onIdle = [];
    const end = () => {
      for (const resolve of waiting) resolve();
    };
    const closed = this.#spawner?.close();
    if (closed === undefined) end();
    else closed.then(end, end); // child processes: once they are gone
  }
}

const ERRORS: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** An error from a thread, rebuilt with its name, message and stack. */
function revive(record: unknown): unknown {
  const r = record as
    | { name: string; message: string; stack?: string; code?: unknown }
    | { value: unknown };
  if ("value" in r) return r.value;
  const error = new (ERRORS[r.name] ?? Error)(r.message);
  if (error.name !== r.name) {
    Object.defineProperty(error, "name", {
      value: r.name,
      writable: true,
      configurable: true,
    });
  }
  if (r.stack !== undefined) error.stack = r.stack;
  if (r.code !== undefined) (error as { code?: unknown }).code = r.code;
  return error;
}
