// ThreadPool cases shared by the Node (import and require) and Bun tests:
// each receives the library (`{ ThreadPool, ThreadError, map, pipeline }`,
// from the built npm package) and the task module's URL, so every runtime
// tests npm/. Plain JavaScript: Node 20 runs it as is. Every wait is bounded
// (5 s), so a hang is a failure, not a stuck test run.
//
// `spin` (a busy loop that never yields) is aborted here for real: Node's
// worker_threads and Bun's Workers stop it. (Deno 2.9.5's terminate() does
// not: tests/threads_test.ts never aborts `spin`.)
import assert from "node:assert/strict";
import { hash } from "./tasks.mjs";

/** `promise`, or a failure after `ms` instead of a hang. */
function bounded(promise, what, ms = 5_000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The reason `promise` rejects with; throws when it resolves. */
function rejection(promise) {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (reason) => reason,
  );
}

/**
 * Closes `threads`, letting calls finish; forced after 5 s (a case that
 * failed on a hung call must not hang the run as well).
 */
function done(threads) {
  return bounded(threads.close(), "close").catch(async (error) => {
    await threads.close({ force: true });
    throw error;
  });
}

/** Polls `condition` every millisecond, for 5 s at most. */
async function until(condition, what) {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * The cases: `{ name, run(lib, tasksURL) }`. `lib` holds ThreadPool,
 * ThreadError, transfer (from "sluice/threads"), map and pipeline (from
 * "sluice").
 */
export const cases = [
  {
    name:
      "ThreadPool.task() as a map stage (concurrency 2) keeps input order; a slow first item finishes last",
    async run({ ThreadPool, map, pipeline }, tasks) {
      const threads = new ThreadPool(tasks, { size: 2 });
      try {
        // Both threads started first: start-up can take longer than the slow item.
        await Promise.all([
          threads.run("hash", { text: "warm", rounds: 1 }),
          threads.run("hash", { text: "up", rounds: 1 }),
        ]);
        const inputs = Array.from({ length: 6 }, (_, i) => ({
          text: `item-${i}`,
          rounds: i === 0 ? 3_000_000 : 1_000,
        }));
        const finished = [];
        const task = threads.task("hash");
        const p = pipeline(
          map(async (input, ctx) => {
            const out = await task(input, ctx);
            finished.push(inputs.indexOf(input));
            return out;
          }, { concurrency: 2 }),
        );
        const out = await bounded(p.run(inputs).collect(), "the pipeline");
        assert.deepEqual(out, inputs.map((input) => hash(input)));
        assert.notEqual(finished[0], 0, `finished in order ${finished}`);
        assert.equal(threads.stats().completed, 2 + 6);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.run() rejects with the task's error: name, message, stack and code kept",
    async run({ ThreadPool, ThreadError }, tasks) {
      const threads = new ThreadPool(tasks, { size: 1 });
      try {
        const error = await rejection(threads.run("fail", "over quota"));
        assert.ok(error instanceof Error);
        assert.ok(!(error instanceof ThreadError));
        assert.equal(error.name, "QuotaError");
        assert.equal(error.message, "over quota");
        assert.equal(error.code, "E_QUOTA");
        assert.match(error.stack, /QuotaError: over quota/);
        assert.match(error.stack, /tasks\.mjs/);
        assert.ok(
          (await rejection(threads.run("hash", null))) instanceof TypeError,
        );
        assert.equal(
          await rejection(threads.run("throwValue", "plain")),
          "plain",
        );
        assert.equal(await threads.run("echo", { value: 1 }), 1);
        assert.equal(threads.stats().restarts, 0);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.run() rejects with a ThreadError when the task ends its thread; a new thread takes the next call",
    async run({ ThreadPool, ThreadError }, tasks) {
      const threads = new ThreadPool(tasks, { size: 1 });
      try {
        assert.equal(await threads.run("echo", { value: 1 }), 1);
        const error = await bounded(
          rejection(threads.run("quit", null)),
          "quit",
        );
        assert.ok(error instanceof ThreadError, String(error));
        assert.match(
          error.message,
          /^Task "quit": .*(self\.close\(\)|process\.exit\(3\))/,
        );
        assert.equal(
          await bounded(threads.run("echo", { value: 2 }), "next call"),
          2,
        );
        assert.equal(threads.stats().restarts, 1);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.run() rejects with a ThreadError when an uncaught error kills the thread; the pool goes on",
    async run({ ThreadPool, ThreadError }, tasks) {
      const threads = new ThreadPool(tasks, { size: 2 });
      try {
        const error = await bounded(
          rejection(threads.run("crash", null)),
          "crash",
        );
        assert.ok(error instanceof ThreadError, String(error));
        // (Bun's message holds a code frame: several lines.)
        assert.match(
          error.message,
          /^Task "crash": [\s\S]*uncaught in the thread/,
        );
        const again = await bounded(
          Promise.all([1, 2, 3].map((value) => threads.run("echo", { value }))),
          "after the crash",
        );
        assert.deepEqual(again, [1, 2, 3]);
        assert.equal(threads.stats().failed, 1);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.task() in a map with retry: a call whose thread died is retried on a new thread and succeeds",
    async run({ ThreadPool, map, pipeline }, tasks) {
      const threads = new ThreadPool(tasks, { size: 2 });
      try {
        const counter = new Int32Array(new SharedArrayBuffer(4));
        const p = pipeline(
          map(threads.task("flaky"), { retry: { attempts: 3, delayMs: 1 } }),
        );
        const item = { counter, failures: 2, how: "crash" };
        const out = await bounded(p.run([item]).collect(), "flaky");
        assert.deepEqual(out, [3]);
        assert.equal(threads.stats().restarts, 2);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.run() with transfer moves buffers both ways: the sender's copy is detached",
    async run({ ThreadPool }, tasks) {
      const threads = new ThreadPool(tasks, { size: 1 });
      try {
        const buffer = new Uint8Array(32).fill(3).buffer;
        const back = await threads.run("roundTrip", buffer, {
          transfer: [buffer],
        });
        assert.equal(buffer.byteLength, 0);
        assert.equal(back.bytes, 32);
        assert.deepEqual(
          [...new Uint8Array(back.buffer)],
          new Array(32).fill(3),
        );
        const copied = new Uint8Array(8).fill(5).buffer;
        assert.deepEqual(await threads.run("inspect", copied), {
          bytes: 8,
          first: 5,
        });
        assert.equal(copied.byteLength, 8);
        const fresh = await threads.run("fresh", { size: 64, fill: 1 });
        assert.equal(fresh.byteLength, 64);
        assert.equal(await threads.run("freshBytesLeft", null), 0);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.run() aborted while a busy loop runs: the thread is terminated, the call rejects with the reason, the pool works afterwards",
    async run({ ThreadPool }, tasks) {
      const threads = new ThreadPool(tasks, { size: 1 });
      try {
        const controller = new AbortController();
        const call = rejection(
          threads.run("spin", null, { signal: controller.signal }),
        );
        await until(() => threads.stats().busy === 1, "the spin to start");
        await new Promise((resolve) => setTimeout(resolve, 50)); // it is looping
        const reason = new Error("stop spinning");
        controller.abort(reason);
        assert.equal(await bounded(call, "the aborted spin"), reason);
        assert.equal(
          await bounded(threads.run("echo", { value: "after" }), "next"),
          "after",
        );
        const stats = threads.stats();
        assert.equal(stats.restarts, 1);
        assert.equal(stats.failed, 1);
        assert.equal(stats.busy, 0);
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.task() in a map stage with timeoutMs stops a busy loop: the item fails with a TimeoutError, the others go through",
    async run({ ThreadPool, map, pipeline }, tasks) {
      const threads = new ThreadPool(tasks, { size: 2 });
      try {
        const errors = [];
        const task = threads.task("echo");
        const spin = threads.task("spin");
        const p = pipeline(
          map(
            (item, ctx) =>
              item === "spin" ? spin(null, ctx) : task({ value: item }, ctx),
            {
              concurrency: 2,
              timeoutMs: 200,
              onError: (error) => {
                errors.push(error);
                return { value: "timed out" };
              },
            },
          ),
        );
        const out = await bounded(
          p.run(["a", "spin", "b", "c"]).collect(),
          "the stage",
        );
        assert.deepEqual(out, ["a", "timed out", "b", "c"]);
        assert.equal(errors.length, 1);
        assert.equal(errors[0].name, "TimeoutError");
        assert.equal(
          await bounded(threads.run("echo", { value: 1 }), "next"),
          1,
        );
      } finally {
        await done(threads);
      }
    },
  },
  {
    name:
      "ThreadPool.close() waits for running calls; close({ force: true }) rejects a running busy loop and waiting calls with an AbortError; run() after close rejects with a TypeError",
    async run({ ThreadPool }, tasks) {
      const threads = new ThreadPool(tasks, { size: 1 });
      const settled = [];
      const calls = ["a", "b"].map((value) =>
        threads.run("echo", { value, ms: 30 }).then((v) => {
          settled.push(v);
          return v;
        })
      );
      const closed = threads.close().then(() => settled.push("closed"));
      assert.ok(
        (await rejection(threads.run("echo", { value: 1 }))) instanceof
          TypeError,
      );
      assert.deepEqual(await bounded(Promise.all(calls), "calls"), ["a", "b"]);
      await bounded(closed, "close");
      assert.deepEqual(settled, ["a", "b", "closed"]);

      const forced = new ThreadPool(tasks, { size: 1 });
      const running = rejection(forced.run("spin", null));
      const waiting = rejection(forced.run("echo", { value: 2 }));
      await until(() => forced.stats().busy === 1, "the spin to start");
      await bounded(forced.close({ force: true }), "close({ force: true })");
      for (
        const error of await bounded(
          Promise.all([running, waiting]),
          "rejections",
        )
      ) {
        assert.equal(error.name, "AbortError");
      }
      const late = await rejection(forced.run("echo", { value: 3 }));
      assert.ok(late instanceof TypeError);
      assert.match(late.message, /closed/);
    },
  },
  {
    name:
      "ThreadPool.run() with a module that cannot load (missing, or throwing at load) rejects with its error and never hangs",
    async run({ ThreadPool, ThreadError }, tasks) {
      const missing = new ThreadPool(new URL("./missing_tasks.mjs", tasks), {
        size: 2,
      });
      try {
        const errors = await bounded(
          Promise.all([1, 2, 3].map((i) => rejection(missing.run("echo", i)))),
          "calls on a missing module",
        );
        for (const error of errors) {
          assert.ok(error instanceof Error, String(error));
          assert.ok(!(error instanceof ThreadError));
          assert.match(error.message, /missing_tasks\.mjs/);
        }
      } finally {
        await done(missing);
      }
      const throwing = new ThreadPool(new URL("./throws_at_load.mjs", tasks), {
        size: 1,
      });
      try {
        const error = await bounded(
          rejection(throwing.run("never", null)),
          "load error",
        );
        assert.equal(error.name, "ConfigError");
        assert.equal(error.message, "the task module cannot load: no config");
        assert.equal(error.code, "E_CONFIG");
      } finally {
        await done(throwing);
      }
    },
  },
  {
    name:
      "ThreadPool.stats() and bad options: counters as calls run; TypeError and RangeError name the option",
    async run({ ThreadPool }, tasks) {
      assert.throws(() => new ThreadPool(tasks, { size: 0 }), {
        name: "RangeError",
        message: "'size' must be a positive integer: current value is 0",
      });
      assert.throws(() => new ThreadPool("./tasks.mjs"), {
        name: "TypeError",
        message: /^'moduleURL' must be a URL/,
      });
      const threads = new ThreadPool(tasks, { size: 2 });
      try {
        assert.throws(() => threads.task(""), {
          name: "TypeError",
          message: /^'name'/,
        });
        const calls = [1, 2, 3, 4].map((value) =>
          threads.run("echo", { value, ms: 50 })
        );
        await until(() => threads.stats().busy === 2, "two calls to run");
        assert.equal(threads.stats().queued, 2);
        assert.deepEqual(await bounded(Promise.all(calls), "calls"), [
          1,
          2,
          3,
          4,
        ]);
        assert.deepEqual({ ...threads.stats() }, {
          size: 2,
          busy: 0,
          queued: 0,
          completed: 4,
          failed: 0,
          restarts: 0,
        });
      } finally {
        await done(threads);
      }
    },
  },
];

/**
 * Runs every case; returns `{ name, ok, error?, todo? }` per case (for Bun's
 * report). `todo`: the case's known bug on `runtime`, reported as a TODO test.
 */
export async function runAll(lib, tasks, runtime) {
  const results = [];
  for (const c of cases) {
    const todo = c.bugs?.[runtime];
    try {
      await c.run(lib, tasks);
      results.push({ name: c.name, ok: true, todo });
    } catch (error) {
      results.push({
        name: c.name,
        ok: false,
        error: String(error?.stack ?? error),
        todo,
      });
    }
  }
  return results;
}
