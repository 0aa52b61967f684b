// Tests of ThreadPool (lib/threads/) on Deno: module Web Workers started from
// a blob: URL, running tests/threads/tasks.mjs (and tasks.ts, typed). Run
// with the leak sanitizers on: every test closes its pool, so no worker, timer
// or op outlives it. Every wait is bounded (5 s) so a hang is a failure.
//
// Deno 2.9.5's Worker.terminate() does not stop a busy loop (the process
// would never exit), so abort and timeouts are tested here with a task that
// awaits (`echo` with a long `ms`), never with `spin`; the Node and Bun tests
// abort `spin` for real.
import assert from "node:assert/strict";
import { Batcher, map, pipeline } from "../mod.ts";
import { ThreadError, ThreadPool, type ThreadPoolStats } from "../threads.ts";
import { hash } from "./threads/tasks.mjs";
import { rejection, sleep, until, withTimeout } from "./_helpers.ts";

const TASKS = new URL("./threads/tasks.mjs", import.meta.url);
const TYPED = new URL("./threads/tasks.ts", import.meta.url);
const LONG_MS = 60_000;

/** `promise`, or a failure after 5 s instead of a hang. */
function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  return withTimeout(promise, 5_000, what);
}

/** An `AbortSignal` that counts its abort listeners added and removed. */
function countedSignal(controller: AbortController): {
  signal: AbortSignal;
  listeners: () => number;
} {
  const signal = controller.signal;
  let live = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    live++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    live--;
    remove(...args);
  };
  return { signal, listeners: () => live };
}

Deno.test("ThreadPool.task() as a map stage (concurrency 2) keeps input order while calls finish out of order", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  // Both threads started first: a thread's start-up on a loaded machine can
  // take longer than the slow item.
  await Promise.all([
    threads.run("hash", { text: "warm", rounds: 1 }),
    threads.run("hash", { text: "up", rounds: 1 }),
  ]);
  // The first item is by far the slowest: the others finish before it.
  const inputs = Array.from({ length: 8 }, (_, i) => ({
    text: `item-${i}`,
    rounds: i === 0 ? 3_000_000 : 1_000,
  }));
  const finished: number[] = [];
  const task = threads.task("hash");
  const p = pipeline(
    map(async (input: { text: string; rounds: number }, ctx) => {
      const out = await task(input, ctx);
      finished.push(inputs.indexOf(input));
      return out;
    }, { concurrency: 2 }),
  );
  const out = await bounded(p.run(inputs).collect(), "the pipeline");
  assert.deepEqual(out, inputs.map((input) => hash(input)));
  assert.notEqual(finished[0], 0, `finished in order ${finished}`);
  const stats = threads.stats();
  assert.equal(stats.size, 2);
  assert.equal(stats.completed, 2 + 8);
  assert.equal(stats.failed, 0);
  assert.equal(stats.restarts, 0);
  assert.equal(stats.busy, 0);
});

Deno.test("ThreadPool<typeof import('./tasks.ts')> types task names, arguments and results (TypeScript tasks run)", async () => {
  await using threads = new ThreadPool<typeof import("./threads/tasks.ts")>(
    TYPED,
    { size: 2 },
  );
  const square: number = await threads.run("square", 7);
  assert.equal(square, 49);
  const words: string[] = await threads.task("words")({ text: "a b c" });
  assert.deepEqual(words, ["a", "b", "c"]);
  const h: string = await threads.run("hash", { text: "x", rounds: 3 });
  assert.equal(h, hash({ text: "x", rounds: 3 }));
  const bytes: Uint8Array = await threads.run("fill", { size: 4, fill: 9 });
  assert.deepEqual([...bytes], [9, 9, 9, 9]);
  const stage = pipeline(map(threads.task("square"), { concurrency: 2 }));
  const squares: number[] = await bounded(
    stage.run([1, 2, 3]).collect(),
    "the typed stage",
  );
  assert.deepEqual(squares, [1, 4, 9]);
  const wrong = () => {
    // @ts-expect-error: not an export
    threads.task("cube");
    // @ts-expect-error: an export, but not a function
    threads.task("VERSION");
    // @ts-expect-error: square takes a number
    threads.run("square", "7");
  };
  assert.equal(typeof wrong, "function"); // type checks only, never called
});

Deno.test("ThreadPool.run() rejects with the task's error: name, message, stack and code kept; the thread stays", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  const error = await rejection(threads.run("fail", "over quota")) as Error & {
    code?: unknown;
  };
  assert.ok(error instanceof Error);
  assert.equal(error.name, "QuotaError");
  assert.equal(error.message, "over quota");
  assert.equal(error.code, "E_QUOTA");
  assert.match(error.stack ?? "", /QuotaError: over quota/);
  assert.match(error.stack ?? "", /tasks\.mjs/);
  assert.ok(!(error instanceof ThreadError));

  // A built-in error class is rebuilt as that class.
  const typeError = await rejection(threads.run("hash", null));
  assert.ok(typeError instanceof TypeError, String(typeError));
  // A thrown value that is not an error arrives as that value.
  assert.deepEqual(await rejection(threads.run("throwValue", { n: 1 })), {
    n: 1,
  });
  assert.equal(await rejection(threads.run("throwValue", "plain")), "plain");
  // A name the module does not export.
  const missing = await rejection(threads.run("nope", 1)) as Error;
  assert.ok(missing instanceof TypeError);
  assert.match(missing.message, /exports no function "nope"/);

  assert.equal(
    await threads.run("echo", { value: "still here" }),
    "still here",
  );
  const stats = threads.stats();
  assert.equal(stats.restarts, 0);
  assert.equal(stats.failed, 5);
  assert.equal(stats.completed, 1);
});

Deno.test("ThreadPool.run() rejects with a ThreadError when the task closes its thread (self.close()); a new thread takes the next call", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  assert.equal(await threads.run("echo", { value: 1 }), 1);
  const error = await bounded(rejection(threads.run("quit", null)), "quit");
  assert.ok(error instanceof ThreadError, String(error));
  assert.equal(error.name, "ThreadError");
  assert.match(error.message, /^Task "quit": .*self\.close\(\)/);
  assert.equal(await bounded(threads.run("echo", { value: 2 }), "next"), 2);
  assert.equal(threads.stats().restarts, 1);
});

Deno.test("ThreadPool.run() rejects with a ThreadError when an uncaught error kills the thread; the pool goes on", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  const [crashed, fine] = await bounded(
    Promise.allSettled([
      threads.run("crash", null),
      threads.run("echo", { value: "ok", ms: 50 }),
    ]),
    "crash",
  );
  assert.equal(fine.status, "fulfilled");
  assert.equal((fine as PromiseFulfilledResult<unknown>).value, "ok");
  assert.equal(crashed.status, "rejected");
  const error = (crashed as PromiseRejectedResult).reason;
  assert.ok(error instanceof ThreadError, String(error));
  assert.match(error.message, /^Task "crash": .*uncaught in the thread/);
  const again = await bounded(
    Promise.all([1, 2, 3].map((value) => threads.run("echo", { value }))),
    "after the crash",
  );
  assert.deepEqual(again, [1, 2, 3]);
  const stats = threads.stats();
  assert.equal(stats.failed, 1);
  assert.equal(stats.completed, 4);
  assert.equal(stats.restarts, 1);
});

Deno.test("ThreadPool.task() in a map with retry: a call whose thread died is retried on a new thread and succeeds", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const errors: unknown[] = [];
  const p = pipeline(
    map(
      (item: { counter: Int32Array; failures: number }, ctx) =>
        threads.task("flaky")(item, ctx).catch((error) => {
          errors.push(error);
          throw error;
        }),
      { retry: { attempts: 3, delayMs: 1 } },
    ),
  );
  const out = await bounded(
    p.run([{ counter, failures: 2 }]).collect(),
    "the flaky stage",
  );
  assert.deepEqual(out, [3]);
  assert.equal(errors.length, 2);
  for (const error of errors) assert.ok(error instanceof ThreadError);
  assert.equal(Atomics.load(counter, 0), 3);
  assert.equal(threads.stats().restarts, 2);
});

Deno.test("ThreadPool.run() with a module URL that does not exist rejects every call with the load error, and never hangs", async () => {
  const threads = new ThreadPool(
    new URL("./threads/missing_tasks.mjs", import.meta.url),
    { size: 2 },
  );
  const errors = await bounded(
    Promise.all([1, 2, 3].map((i) => rejection(threads.run("echo", i)))),
    "calls on a missing module",
  ) as Error[];
  for (const error of errors) {
    assert.ok(error instanceof Error, String(error));
    assert.ok(!(error instanceof ThreadError));
    assert.match(String(error.message), /missing_tasks\.mjs/);
  }
  // Later calls reject at once with the same error.
  const later = await bounded(rejection(threads.run("echo", 4)), "later call");
  assert.equal((later as Error).message, errors[0].message);
  await bounded(threads.close(), "close");
  assert.equal(threads.stats().failed, 4);
});

Deno.test("ThreadPool.run() with a module that throws while loading rejects with the module's error (name, message, code)", async () => {
  const threads = new ThreadPool(
    new URL("./threads/throws_at_load.mjs", import.meta.url),
    { size: 1 },
  );
  const first = await bounded(
    rejection(threads.run("never", null)),
    "the first call",
  ) as Error & { code?: unknown };
  assert.equal(first.name, "ConfigError");
  assert.equal(first.message, "the task module cannot load: no config");
  assert.equal(first.code, "E_CONFIG");
  const second = await bounded(rejection(threads.run("never", null)), "again");
  assert.equal((second as Error).name, "ConfigError");
  await bounded(threads.close(), "close");
});

Deno.test("ThreadPool.run() with transfer moves the argument's buffer to the thread (the caller's copy is detached)", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  const copied = new Uint8Array(8).fill(5).buffer;
  assert.deepEqual(await threads.run("inspect", copied), {
    bytes: 8,
    first: 5,
  });
  assert.equal(copied.byteLength, 8); // no transfer: copied

  const moved = new Uint8Array(16).fill(7).buffer;
  const result = await threads.run("inspect", moved, { transfer: [moved] });
  assert.deepEqual(result, { bytes: 16, first: 7 });
  assert.equal(moved.byteLength, 0);
});

Deno.test("transfer() moves a task's result back: the caller gets the buffer, the thread's copy is detached", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  // transfer() imported from threads.ts by the task.
  const buffer = new Uint8Array(32).fill(3).buffer;
  const back = await threads.run("roundTrip", buffer, {
    transfer: [buffer],
  }) as { bytes: number; buffer: ArrayBuffer };
  assert.equal(buffer.byteLength, 0);
  assert.equal(back.bytes, 32);
  assert.ok(back.buffer instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(back.buffer)], new Array(32).fill(3));

  // The thread's own buffer is detached once moved out.
  const fresh = await threads.run("fresh", {
    size: 64,
    fill: 1,
  }) as ArrayBuffer;
  assert.equal(fresh.byteLength, 64);
  assert.equal(await threads.run("freshBytesLeft", null), 0);
});

Deno.test("ThreadPool.run() with a signal aborted while running terminates the thread and rejects with the reason; a new thread runs the next call", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  const controller = new AbortController();
  const { signal, listeners } = countedSignal(controller);
  const call = threads.run("echo", { value: 1, ms: LONG_MS }, { signal });
  await until(() => threads.stats().busy === 1, "the call to start");
  assert.equal(listeners(), 1);
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(await bounded(rejection(call), "the aborted call"), reason);
  assert.equal(listeners(), 0);
  assert.equal(await bounded(threads.run("echo", { value: 2 }), "next"), 2);
  const stats = threads.stats();
  assert.equal(stats.restarts, 1);
  assert.equal(stats.failed, 1);
});

Deno.test("ThreadPool.run() with a signal aborted while waiting leaves the queue: the call never runs, the running one is untouched", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const first = threads.run("echo", { value: "first", ms: 100 });
  const controller = new AbortController();
  const { signal, listeners } = countedSignal(controller);
  const waiting = threads.run("flaky", { counter, failures: 0 }, { signal });
  await until(() => threads.stats().queued === 1, "the call to wait");
  controller.abort();
  const reason = await rejection(waiting) as Error;
  assert.equal(reason.name, "AbortError");
  assert.equal(listeners(), 0);
  assert.equal(threads.stats().queued, 0);
  assert.equal(await bounded(first, "the running call"), "first");
  assert.equal(Atomics.load(counter, 0), 0);
  assert.equal(threads.stats().restarts, 0);
  // An already aborted signal rejects at once.
  assert.equal(
    await rejection(
      threads.run("echo", { value: 0 }, { signal: AbortSignal.abort("no") }),
    ),
    "no",
  );
});

Deno.test("ThreadPool.task() in a map stage with timeoutMs: the stuck call's thread is terminated and the item fails with a TimeoutError", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  const errors: unknown[] = [];
  const p = pipeline(
    map(threads.task("echo"), {
      concurrency: 2,
      timeoutMs: 200,
      onError: (error) => {
        errors.push(error);
        return { value: "timed out" };
      },
    }),
  );
  const out = await bounded(
    p.run([{ value: "a" }, { value: "b", ms: LONG_MS }, { value: "c" }])
      .collect(),
    "the stage with a timeout",
  );
  assert.deepEqual(out, ["a", "timed out", "c"]);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).name, "TimeoutError");
  assert.equal(threads.stats().busy, 0);
});

Deno.test("ThreadPool.close() waits for running and waiting calls, then ends every thread; run() afterwards rejects with a TypeError", async () => {
  const threads = new ThreadPool(TASKS, { size: 1 });
  const settled: string[] = [];
  const calls = ["a", "b", "c"].map((value) =>
    threads.run("echo", { value, ms: 30 }).then((v) => {
      settled.push(v as string);
      return v;
    })
  );
  await until(() => threads.stats().busy === 1, "the first call to start");
  const closed = threads.close().then(() => settled.push("closed"));
  const late = await rejection(threads.run("echo", { value: "late" }));
  assert.ok(late instanceof TypeError);
  assert.match((late as Error).message, /closed/);
  assert.deepEqual(await bounded(Promise.all(calls), "the calls"), [
    "a",
    "b",
    "c",
  ]);
  await bounded(closed, "close");
  assert.deepEqual(settled, ["a", "b", "c", "closed"]);
  const stats: ThreadPoolStats = threads.stats();
  assert.deepEqual({ ...stats }, {
    size: 1,
    busy: 0,
    queued: 0,
    completed: 3,
    failed: 0,
    restarts: 0,
  });
  // The stage function of a closed pool rejects too.
  const stage = await rejection(threads.task("echo")({ value: 1 }));
  assert.ok(stage instanceof TypeError);
});

Deno.test("ThreadPool.close({ force: true }) rejects running and waiting calls with an AbortError at once and ends every thread", async () => {
  const threads = new ThreadPool(TASKS, { size: 1 });
  const running = rejection(threads.run("echo", { value: 1, ms: LONG_MS }));
  const waiting = rejection(threads.run("echo", { value: 2 }));
  await until(() => threads.stats().busy === 1, "the call to start");
  await bounded(threads.close({ force: true }), "close({ force: true })");
  for (const error of await Promise.all([running, waiting])) {
    assert.equal((error as Error).name, "AbortError");
  }
  assert.ok(
    (await rejection(threads.run("echo", { value: 3 }))) instanceof
      TypeError,
  );
  const stats = threads.stats();
  assert.equal(stats.failed, 2);
  assert.equal(stats.busy, 0);
  assert.equal(stats.queued, 0);
});

Deno.test("ThreadPool.close() before any call, and [Symbol.asyncDispose], resolve without starting a thread", async () => {
  const threads = new ThreadPool(TASKS);
  await bounded(threads.close(), "close of an unused pool");
  {
    await using disposed = new ThreadPool(TASKS, { size: 1 });
    assert.equal(await disposed.run("echo", { value: 1 }), 1);
  }
});

Deno.test("ThreadPool.stats() reports size, busy, queued, completed, failed and restarts as calls run", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  assert.deepEqual({ ...threads.stats() }, {
    size: 2,
    busy: 0,
    queued: 0,
    completed: 0,
    failed: 0,
    restarts: 0,
  });
  const calls = [1, 2, 3, 4, 5].map((value) =>
    threads.run("echo", { value, ms: 100 })
  );
  const failing = rejection(threads.run("fail", "x"));
  await until(() => threads.stats().busy === 2, "two calls to run");
  const during = threads.stats();
  assert.equal(during.busy, 2);
  assert.equal(during.queued, 4);
  assert.deepEqual(await bounded(Promise.all(calls), "the calls"), [
    1,
    2,
    3,
    4,
    5,
  ]);
  await failing;
  assert.deepEqual({ ...threads.stats() }, {
    size: 2,
    busy: 0,
    queued: 0,
    completed: 5,
    failed: 1,
    restarts: 0,
  });
});

Deno.test("ThreadPool() without size uses the logical cores (navigator.hardwareConcurrency)", async () => {
  await using threads = new ThreadPool(TASKS);
  assert.equal(await threads.run("echo", { value: 1 }), 1);
  assert.equal(threads.stats().size, navigator.hardwareConcurrency);
});

Deno.test("ThreadPool() and its methods throw a TypeError or RangeError naming a bad argument", () => {
  assert.throws(() => new ThreadPool(TASKS, { size: 0 }), {
    name: "RangeError",
    message: "'size' must be a positive integer: current value is 0",
  });
  assert.throws(() => new ThreadPool(TASKS, { size: 1.5 }), {
    name: "RangeError",
    message: /^'size' must be a positive integer/,
  });
  assert.throws(
    // @ts-expect-error: a string size
    () => new ThreadPool(TASKS, { size: "2" }),
    { message: /^'size' must be/ },
  );
  assert.throws(() => new ThreadPool("./threads/tasks.mjs"), {
    name: "TypeError",
    message: /^'moduleURL' must be a URL or an absolute URL string/,
  });
  assert.throws(
    // @ts-expect-error: options must be an object
    () => new ThreadPool(TASKS, 2),
    { name: "TypeError", message: /^'options' must be an object/ },
  );
  const threads = new ThreadPool(TASKS, { size: 1 }); // starts nothing
  assert.throws(() => threads.task(""), {
    name: "TypeError",
    message: /^'name' must be the name of an exported function/,
  });
  assert.throws(
    // @ts-expect-error: signal must be an AbortSignal
    () => threads.run("echo", {}, { signal: "stop" }),
    { name: "TypeError", message: /'signal'/ },
  );
  assert.throws(
    // @ts-expect-error: force must be a boolean
    () => threads.close({ force: "yes" }),
    { name: "TypeError", message: /^'force' must be/ },
  );
  return rejection(
    // @ts-expect-error: transfer must be an array
    threads.run("echo", {}, { transfer: new ArrayBuffer(1) }),
  ).then((error) => {
    assert.ok(error instanceof TypeError);
    assert.match((error as Error).message, /^'transfer' must be an array/);
    return threads.close();
  });
});

Deno.test("ThreadPool.run() with an argument that cannot be cloned rejects, and the thread stays usable", async () => {
  await using threads = new ThreadPool(TASKS, { size: 1 });
  const error = await rejection(threads.run("echo", { value: () => 1 }));
  assert.equal((error as Error).name, "DataCloneError");
  assert.equal(await threads.run("echo", { value: 2 }), 2);
  assert.equal(threads.stats().busy, 0);
});

Deno.test("Batcher with a batch function from ThreadPool.task() hashes batches on threads, results in call order", async () => {
  await using threads = new ThreadPool(TASKS, { size: 2 });
  const batches: number[] = [];
  const task = threads.task("hashAll");
  await using batcher = new Batcher(
    (inputs: { text: string }[], ctx) => {
      batches.push(inputs.length);
      return task(inputs, ctx) as Promise<string[]>;
    },
    { maxSize: 4, maxWaitMs: 10, concurrency: 2 },
  );
  const inputs = Array.from({ length: 10 }, (_, i) => ({ text: `t${i}` }));
  const out = await bounded(
    Promise.all(inputs.map((input) => batcher.process(input))),
    "the batcher",
  );
  assert.deepEqual(out, inputs.map((input) => hash(input)));
  assert.deepEqual(batches, [4, 4, 2]);
  assert.equal(threads.stats().completed, 3);
});

Deno.test("ThreadPool.run() calls beyond size wait and every one settles, never more than size running", async () => {
  await using threads = new ThreadPool(TASKS, { size: 3 });
  let maxBusy = 0;
  const calls = Array.from(
    { length: 20 },
    (_, i) =>
      threads.run("echo", { value: i, ms: i % 3 }).finally(() => {
        maxBusy = Math.max(maxBusy, threads.stats().busy);
      }),
  );
  maxBusy = Math.max(maxBusy, threads.stats().busy);
  assert.deepEqual(
    await bounded(Promise.all(calls), "20 calls"),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.ok(maxBusy <= 3, `busy ${maxBusy}`);
  await sleep(0);
});
