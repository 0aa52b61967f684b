// Tests of ThreadPool's `isolation: "process"` on Deno: each slot is a child
// process (`deno eval` of the bootstrap) killed with SIGKILL when a call
// aborts, so a busy loop (`spin`) stops for real, which Deno 2.9.5's
// Worker.terminate() does not do. Run with the leak sanitizers on: every
// test closes its pool, and close() resolves once every child has exited and
// its pipes are closed. Every wait is bounded (5 s) so a hang is a failure;
// no test asserts a tighter duration.
import assert from "node:assert/strict";
import { map, pipeline } from "../mod.ts";
import { ThreadError, ThreadPool } from "../threads.ts";
import { hash } from "./threads/tasks.mjs";
import { rejection, until, withTimeout } from "./_helpers.ts";

const TASKS = new URL("./threads/tasks.mjs", import.meta.url);
const PROCESS = { isolation: "process" } as const;

/** `promise`, or a failure after 5 s instead of a hang. */
function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  return withTimeout(promise, 5_000, what);
}

/** Whether process `pid` exists (a zombie not yet reaped counts). */
function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

Deno.test('ThreadPool({ isolation: "process" }) runs tasks in child processes: results, structured-clone types, transfer copies', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 2 });
  const input = { text: "abc", rounds: 1000 };
  assert.equal(await bounded(threads.run("hash", input), "hash"), hash(input));
  const pid = await threads.run("pid", null) as number;
  assert.equal(typeof pid, "number");
  assert.notEqual(pid, Deno.pid);

  const value = {
    big: 2n ** 70n,
    date: new Date(0),
    map: new Map([["k", new Set([1, 2])]]),
    bytes: new Uint8Array([1, 2, 3]),
    nested: { list: [1, "two", null, undefined] },
  };
  assert.deepEqual(await threads.run("echo", { value }), value);

  // transfer copies: the caller's buffer stays attached; a task's
  // transfer() result arrives (copied).
  const buffer = new Uint8Array([9, 8, 7]).buffer;
  const back = await bounded(
    threads.run("roundTrip", buffer, { transfer: [buffer] }),
    "roundTrip",
  ) as { bytes: number; buffer: ArrayBuffer };
  assert.equal(back.bytes, 3);
  assert.deepEqual([...new Uint8Array(back.buffer)], [9, 8, 7]);
  assert.equal(buffer.byteLength, 3);
  assert.equal(threads.stats().restarts, 0);
});

Deno.test('ThreadPool({ isolation: "process" }): a task writing to stdout (console, Deno.stdout) does not corrupt the calls', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  assert.equal(await bounded(threads.run("chatty", "ok"), "chatty"), "ok");
  assert.equal(await bounded(threads.run("chatty", 2), "again"), 2);
  assert.equal(threads.stats().restarts, 0);
});

Deno.test('ThreadPool({ isolation: "process" }).run() aborted while a task spins kills the child (its pid is gone), rejects with the reason; a new child runs the next call', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  const pid = await bounded(threads.run("pid", null), "pid") as number;
  const controller = new AbortController();
  const call = threads.run("spin", null, { signal: controller.signal });
  await until(() => threads.stats().busy === 1, "the call to start");
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(await bounded(rejection(call), "the aborted call"), reason);
  await until(() => !alive(pid), `the killed child ${pid} to be gone`);

  const next = await bounded(threads.run("pid", null), "next") as number;
  assert.notEqual(next, pid);
  const stats = threads.stats();
  assert.equal(stats.restarts, 1);
  assert.equal(stats.failed, 1);
  assert.equal(stats.busy, 0);
});

Deno.test('ThreadPool({ isolation: "process" }).task("spin") in a map stage with timeoutMs: the item fails with a TimeoutError, the child is killed, the pool goes on', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  const pid = await bounded(threads.run("pid", null), "pid") as number;
  const errors: unknown[] = [];
  const p = pipeline(
    map(threads.task("spin"), {
      timeoutMs: 100,
      onError: (error) => {
        errors.push(error);
        return { value: "timed out" };
      },
    }),
  );
  const out = await bounded(p.run([null]).collect(), "the stage");
  assert.deepEqual(out, ["timed out"]);
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).name, "TimeoutError");
  await until(() => !alive(pid), `the killed child ${pid} to be gone`);
  assert.equal(await bounded(threads.run("echo", { value: 1 }), "next"), 1);
  assert.equal(threads.stats().restarts, 1);
});

Deno.test('ThreadPool({ isolation: "process" }).run() rejects with the task\'s error: name, message, stack and code kept; the child stays', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  const error = await bounded(
    rejection(threads.run("fail", "over quota")),
    "fail",
  ) as Error & { code?: unknown };
  assert.ok(error instanceof Error);
  assert.ok(!(error instanceof ThreadError));
  assert.equal(error.name, "QuotaError");
  assert.equal(error.message, "over quota");
  assert.equal(error.code, "E_QUOTA");
  assert.match(error.stack ?? "", /QuotaError: over quota/);
  assert.match(error.stack ?? "", /tasks\.mjs/);
  assert.ok(await rejection(threads.run("hash", null)) instanceof TypeError);
  const missing = await rejection(threads.run("nope", 1)) as Error;
  assert.match(missing.message, /exports no function "nope"/);
  assert.equal(threads.stats().restarts, 0);
});

Deno.test('ThreadPool({ isolation: "process" }).run() rejects with a ThreadError when the child exits (close(), an uncaught error); a new child takes the next call', async () => {
  await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  const pid = await bounded(threads.run("pid", null), "pid") as number;
  const quit = await bounded(rejection(threads.run("quit", null)), "quit");
  assert.ok(quit instanceof ThreadError, String(quit));
  assert.match(quit.message, /^Task "quit": .*close\(\)/);
  await until(() => !alive(pid), `the child ${pid} to be gone`);

  const crash = await bounded(rejection(threads.run("crash", null)), "crash");
  assert.ok(crash instanceof ThreadError, String(crash));
  assert.match(crash.message, /^Task "crash": .*uncaught in the thread/);

  assert.equal(await bounded(threads.run("echo", { value: 3 }), "next"), 3);
  const stats = threads.stats();
  assert.equal(stats.restarts, 2);
  assert.equal(stats.failed, 2);
});

Deno.test('ThreadPool({ isolation: "process" }): a child that runs out of memory ends alone: its call rejects with a ThreadError, a new child takes the next call', async () => {
  // A small heap for the children only (this process has started already).
  const before = Deno.env.get("DENO_V8_FLAGS");
  Deno.env.set("DENO_V8_FLAGS", "--max-old-space-size=128");
  try {
    await using threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
    const error = await bounded(rejection(threads.run("hog", null)), "hog");
    assert.ok(error instanceof ThreadError, String(error));
    assert.match(error.message, /^Task "hog": /);
    assert.equal(await bounded(threads.run("echo", { value: 4 }), "next"), 4);
    assert.equal(threads.stats().restarts, 1);
  } finally {
    if (before === undefined) Deno.env.delete("DENO_V8_FLAGS");
    else Deno.env.set("DENO_V8_FLAGS", before);
  }
});

Deno.test('ThreadPool({ isolation: "process" }).close() lets running calls finish, then every child is gone when it resolves', async () => {
  const threads = new ThreadPool(TASKS, { ...PROCESS, size: 2 });
  const pids = await Promise.all([
    threads.run("pid", null),
    threads.run("pid", null),
  ]) as number[];
  const running = threads.run("echo", { value: "done", ms: 200 });
  await bounded(threads.close(), "close");
  assert.equal(await running, "done");
  for (const pid of pids) assert.ok(!alive(pid), `child ${pid} is gone`);
  await assert.rejects(threads.run("echo", { value: 1 }), TypeError);
});

Deno.test('ThreadPool({ isolation: "process" }).close({ force: true }) kills a spinning child: its call rejects with an AbortError, the child is gone', async () => {
  const threads = new ThreadPool(TASKS, { ...PROCESS, size: 1 });
  const pid = await bounded(threads.run("pid", null), "pid") as number;
  const spinning = rejection(threads.run("spin", null));
  const waiting = rejection(threads.run("echo", { value: 1 }));
  await until(() => threads.stats().busy === 1, "the call to start");
  await bounded(threads.close({ force: true }), "force close");
  for (const call of [spinning, waiting]) {
    const error = await call as Error;
    assert.equal(error.name, "AbortError");
  }
  assert.ok(!alive(pid), `child ${pid} is gone`);
});

Deno.test('ThreadPool({ isolation: "process" }) with a module that does not exist rejects the call with the load error', async () => {
  await using threads = new ThreadPool(
    new URL("./threads/no_such_module.mjs", import.meta.url),
    { ...PROCESS, size: 1 },
  );
  const error = await bounded(rejection(threads.run("x", 1)), "load") as Error;
  assert.ok(error instanceof Error);
  assert.match(error.message, /no_such_module/);
});

Deno.test("ThreadPool() throws a TypeError naming a bad isolation", () => {
  assert.throws(
    // @ts-expect-error: not an isolation
    () => new ThreadPool(TASKS, { isolation: "fork" }),
    {
      name: "TypeError",
      message:
        `'isolation' must be "thread" or "process": current value is "fork"`,
    },
  );
});
