import assert from "node:assert/strict";
import { Pool, type TaskContext, TimeoutError } from "../mod.ts";
import {
  collect,
  countedSignal,
  deferred,
  FakeTime,
  Gates,
  Gauge,
  rangeInclusive,
  sleep,
  tick,
  until,
  untilAborted,
  whenAborted,
  withTimeout,
} from "./_helpers.ts";

/** Opens every gate, again and again, until `n` tasks have started. */
async function finishAll(gates: Gates<number>, n: number): Promise<void> {
  while (gates.started.length < n) {
    gates.openAll();
    await tick();
  }
  gates.openAll();
}

// ---- submit / run ----------------------------------------------------------

Deno.test("Pool.submit() calls fn(...args) before it returns when a slot is free, and resolves with the result", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const calls: unknown[][] = [];
  const p = pool.submit(
    async (a: number, b: string) => {
      calls.push([a, b]);
      await tick();
      return `${a}${b}`;
    },
    1,
    "x",
  );
  assert.deepEqual(calls, [[1, "x"]]); // started at once, no context manager
  assert.equal(pool.active, 1);
  assert.equal(await p, "1x");
  // A synchronous function works too, with any number of arguments.
  assert.equal(
    await pool.submit((...xs: number[]) => xs.length, 1, 2, 3, 4),
    4,
  );
  assert.equal(await pool.submit(() => "none"), "none");
});

Deno.test("Pool.submit() rejects with the function's error, thrown or rejected", async () => {
  await using pool = new Pool();
  await assert.rejects(
    pool.submit(() => {
      throw new Error("sync");
    }),
    /sync/,
  );
  await assert.rejects(
    pool.submit(() => Promise.reject(new Error("async"))),
    /async/,
  );
  assert.equal(await pool.submit(() => 1), 1); // the slot was given back
});

Deno.test("Pool.submit() never runs more than `concurrency` tasks, and uses every slot", async () => {
  await using pool = new Pool({ concurrency: 3 });
  const gauge = new Gauge();
  const gates = new Gates<number>();
  const tasks = rangeInclusive(0, 19).map((i) =>
    pool.submit(async () => {
      gauge.enter();
      await gates.wait(i);
      gauge.leave();
      return i;
    })
  );
  assert.equal(pool.active, 3);
  assert.equal(pool.pending, 17);
  // Finish them in a scrambled order.
  for (const i of [2, 0, 1, 5, 3, 4, 8, 6, 7, 11, 9, 10, 14, 12, 13]) {
    await until(() => gates.started.includes(i), `task ${i}`);
    gates.open(i);
  }
  await finishAll(gates, 20);
  assert.deepEqual(await Promise.all(tasks), rangeInclusive(0, 19));
  assert.equal(gauge.peak, 3);
});

Deno.test("Pool.run() gives stable workerIds from 0 to concurrency - 1, distinct among running tasks", async () => {
  await using pool = new Pool({ concurrency: 4 });
  const running = new Set<number>();
  const seen = new Set<number>();
  await Promise.all(
    rangeInclusive(1, 60).map((i) =>
      pool.run(async (ctx) => {
        assert(!running.has(ctx.workerId), `slot ${ctx.workerId} taken twice`);
        running.add(ctx.workerId);
        seen.add(ctx.workerId);
        await sleep(i % 3);
        running.delete(ctx.workerId);
      })
    ),
  );
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
});

Deno.test("Pool.run() passes ctx: signal, workerId, attempt from 1, index", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const ctxs = await Promise.all([
    pool.run((ctx) => ctx),
    pool.run((ctx) => ctx),
  ]);
  assert(ctxs[0].signal instanceof AbortSignal);
  assert.equal(ctxs[0].signal.aborted, false);
  assert.deepEqual(ctxs.map((c) => [c.workerId, c.attempt, c.index]), [
    [0, 1, 0],
    [1, 1, 1],
  ]);
  assert.equal(ctxs[0].stage, "pool");
});

Deno.test("Pool.run() runs higher priorities first, equal ones first in first out (AntFlow's test)", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const order: string[] = [];
  const blocker = deferred();
  const first = pool.run(() => blocker.promise);
  const tasks = [
    pool.run(() => order.push("low"), { priority: 1 }),
    pool.run(() => order.push("critical"), { priority: 10 }),
    pool.run(() => order.push("medium"), { priority: 5 }),
    pool.run(() => order.push("high"), { priority: 8 }),
    pool.run(() => order.push("medium 2"), { priority: 5 }),
    pool.run(() => order.push("default")),
    pool.run(() => order.push("negative"), { priority: -1 }),
    pool.run(() => order.push("critical 2"), { priority: 10 }),
  ];
  assert.equal(pool.active, 1);
  assert.equal(pool.pending, 8);
  blocker.resolve();
  await Promise.all([first, ...tasks]);
  assert.deepEqual(order, [
    "critical",
    "critical 2",
    "high",
    "medium",
    "medium 2",
    "low",
    "default",
    "negative",
  ]);
});

Deno.test("Pool.submit() runs equal-priority tasks first in first out", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const order: number[] = [];
  await Promise.all(
    rangeInclusive(0, 99).map((i) =>
      pool.submit(async () => {
        order.push(i);
        await tick();
      })
    ),
  );
  assert.deepEqual(order, rangeInclusive(0, 99));
});

// ---- task signals ----------------------------------------------------------

Deno.test("Pool.run() with a signal aborted while queued: leaves the queue, rejects with the reason, listener removed", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const blocker = deferred();
  const first = pool.submit(() => blocker.promise);
  const { controller, listeners } = countedSignal();
  let ran = false;
  const task = pool.run(() => (ran = true), { signal: controller.signal });
  assert.equal(listeners(), 1);
  assert.equal(pool.pending, 1);
  const reason = new Error("changed my mind");
  controller.abort(reason);
  await assert.rejects(task, (e) => e === reason);
  assert.equal(pool.pending, 0);
  assert.equal(listeners(), 0);
  blocker.resolve();
  await first;
  await pool.onIdle();
  assert.equal(ran, false);
});

Deno.test("Pool.run() with an already aborted signal rejects at once and never calls fn", async () => {
  await using pool = new Pool();
  const controller = new AbortController();
  controller.abort(new Error("already"));
  let ran = false;
  await assert.rejects(
    pool.run(() => (ran = true), { signal: controller.signal }),
    /already/,
  );
  assert.equal(ran, false);
  assert.equal(pool.active + pool.pending, 0);
});

Deno.test("Pool.run() with a signal aborted while running: ctx.signal aborts, the promise settles with fn's outcome, listener removed", async () => {
  await using pool = new Pool({ concurrency: 1, retry: { attempts: 3 } });
  const { controller, listeners } = countedSignal();
  let attempts = 0;
  const started = deferred();
  const task = pool.run((ctx) => {
    attempts++;
    started.resolve();
    return untilAborted(ctx.signal);
  }, { signal: controller.signal });
  await started.promise;
  controller.abort(new Error("stop"));
  await assert.rejects(task, /stop/);
  assert.equal(attempts, 1); // no retry after an abort
  assert.equal(listeners(), 0);

  // A function that ignores the abort still gives its value.
  const c2 = new AbortController();
  const gate = deferred();
  const t2 = pool.run(async (ctx) => {
    await gate.promise;
    return ctx.signal.aborted ? "aborted, but done" : "?";
  }, { signal: c2.signal });
  await tick();
  c2.abort();
  gate.resolve();
  assert.equal(await t2, "aborted, but done");
});

Deno.test("Pool.run() removes its signal listener when the task completes normally", async () => {
  await using pool = new Pool();
  const { controller, listeners } = countedSignal();
  await pool.run(() => 1, { signal: controller.signal });
  await pool.run(() => Promise.reject(new Error("x")), {
    signal: controller.signal,
  }).catch(() => {});
  assert.equal(listeners(), 0);
});

// ---- close, cancel, dispose -----------------------------------------------

Deno.test("Pool.close() drains queued tasks, then submit() and run() reject with a TypeError", async () => {
  const pool = new Pool({ concurrency: 1 });
  const gate = deferred();
  const done: number[] = [];
  const tasks = [
    pool.submit(async () => {
      await gate.promise;
      done.push(0);
    }),
    pool.submit(() => done.push(1)),
    pool.submit(() => done.push(2)),
  ];
  let closed = false;
  const closing = pool.close().then(() => (closed = true));
  assert.equal(pool.closed, true);
  await assert.rejects(pool.submit(() => 1), {
    name: "TypeError",
    message:
      "The pool is closed (1 running, 2 waiting): it takes no new task after close()",
  });
  await assert.rejects(pool.run(() => 1), TypeError);
  await tick();
  assert.equal(closed, false);
  gate.resolve();
  await closing;
  await Promise.all(tasks);
  assert.deepEqual(done, [0, 1, 2]);
  await pool.close(); // again: resolves
});

Deno.test("Pool.close({ cancelPending: true }) rejects queued tasks with an AbortError, aborts running ones, settles every promise", async () => {
  const pool = new Pool({ concurrency: 2 });
  const signals: AbortSignal[] = [];
  const running = rangeInclusive(0, 1).map(() =>
    pool.run((ctx) => {
      signals.push(ctx.signal);
      return untilAborted(ctx.signal);
    })
  );
  const ran: number[] = [];
  const queued = rangeInclusive(0, 4).map((i) =>
    pool.submit(() => ran.push(i))
  );
  const withPriority = pool.run(() => ran.push(99), { priority: 5 });
  const { controller, listeners } = countedSignal();
  const withSignal = pool.run(() => ran.push(98), {
    signal: controller.signal,
  });
  await pool.close({ cancelPending: true });
  const results = await withTimeout(
    Promise.allSettled([...running, ...queued, withPriority, withSignal]),
    2000,
    "every promise settles",
  );
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal((r as PromiseRejectedResult).reason.name, "AbortError");
  }
  assert(signals.every((s) => s.aborted));
  assert.deepEqual(ran, []);
  assert.equal(listeners(), 0);
  assert.equal(pool.active + pool.pending, 0);
});

Deno.test("Pool.close({ cancelPending: true }) waits for running tasks to return and keeps their outcome", async () => {
  const pool = new Pool({ concurrency: 1 });
  const gate = deferred();
  let returned = false;
  const task = pool.run(async () => {
    await gate.promise;
    returned = true;
    return "finished anyway";
  });
  let closed = false;
  const closing = pool.close({ cancelPending: true }).then(
    () => (closed = true),
  );
  await tick();
  assert.equal(closed, false);
  gate.resolve();
  await closing;
  assert.equal(returned, true);
  assert.equal(await task, "finished anyway");
});

Deno.test("Pool.close({ cancelPending: true }) after a draining close() cancels what is still queued", async () => {
  const pool = new Pool({ concurrency: 1 });
  const gate = deferred();
  const first = pool.run(async (ctx) => {
    await gate.promise;
    return ctx.signal.aborted;
  });
  const second = pool.submit(() => "second");
  const draining = pool.close();
  const cancelling = pool.close({ cancelPending: true });
  await assert.rejects(second, { name: "AbortError" });
  gate.resolve();
  assert.equal(await first, true);
  await Promise.all([draining, cancelling]);
});

Deno.test("Pool with a signal: aborting it cancels like close({ cancelPending: true }) with its reason", async () => {
  const { controller, listeners } = countedSignal();
  const pool = new Pool({ concurrency: 1, signal: controller.signal });
  assert.equal(listeners(), 1);
  const running = pool.run((ctx) => untilAborted(ctx.signal));
  const queued = pool.submit(() => "never");
  const reason = new Error("shutting down");
  controller.abort(reason);
  assert.equal(pool.closed, true);
  await assert.rejects(running, (e) => e === reason);
  await assert.rejects(queued, (e) => e === reason);
  await assert.rejects(pool.submit(() => 1), TypeError);
  await pool.close();
  assert.equal(listeners(), 0);
});

Deno.test("Pool with an already aborted signal is closed from the start", async () => {
  const controller = new AbortController();
  controller.abort();
  const pool = new Pool({ signal: controller.signal });
  assert.equal(pool.closed, true);
  await assert.rejects(pool.submit(() => 1), TypeError);
  await pool.close();
});

Deno.test("Pool [Symbol.asyncDispose] (await using) drains the pool at the end of the scope", async () => {
  const done: number[] = [];
  let outer: Pool;
  {
    await using pool = new Pool({ concurrency: 1 });
    outer = pool;
    for (const i of [1, 2, 3]) {
      pool.submit(async () => {
        await tick();
        done.push(i);
      });
    }
  }
  assert.deepEqual(done, [1, 2, 3]);
  assert.equal(outer.closed, true);
  assert.equal(typeof Pool.prototype[Symbol.asyncDispose], "function");
});

// ---- onIdle, onSizeLessThan, pause ------------------------------------------

Deno.test("Pool.onIdle() resolves at once when idle, else when nothing runs, waits or backs off", async () => {
  await using pool = new Pool({
    concurrency: 1,
    retry: { attempts: 2, delayMs: 100, jitter: false },
  });
  let idle = false;
  await pool.onIdle(); // already idle
  let calls = 0;
  const task = pool.submit(() => {
    if (++calls === 1) throw new Error("once");
    return "ok";
  });
  pool.onIdle().then(() => (idle = true));
  await until(() => calls === 1, "first attempt");
  await tick();
  // Backing off: neither running nor queued, but not idle.
  assert.equal(pool.active, 0);
  assert.equal(pool.pending, 1);
  assert.equal(idle, false);
  assert.equal(await task, "ok");
  await tick();
  assert.equal(idle, true);
});

Deno.test("Pool.onSizeLessThan() resolves at once when true, else when the queue shrinks below the limit", async () => {
  await using pool = new Pool({ concurrency: 1 });
  await pool.onSizeLessThan(1);
  const gates = new Gates<number>();
  const tasks = rangeInclusive(0, 4).map((i) =>
    pool.submit(() => gates.wait(i))
  );
  assert.equal(pool.pending, 4);
  let below3 = false;
  let below1 = false;
  pool.onSizeLessThan(3).then(() => (below3 = true));
  pool.onSizeLessThan(1).then(() => (below1 = true));
  gates.open(0);
  await until(() => gates.started.length === 2, "second task");
  await tick();
  assert.equal(pool.pending, 3);
  assert.equal(below3, false);
  gates.open(1);
  await until(() => below3, "pending < 3");
  assert.equal(below1, false);
  await finishAll(gates, 5);
  await Promise.all(tasks);
  assert.equal(below1, true);
  assert.throws(() => pool.onSizeLessThan(0), {
    name: "RangeError",
    message:
      "'limit' must be a positive integer or Infinity: current value is 0",
  });
});

Deno.test("Pool.pause() stops starting tasks without disturbing running ones; resume() starts them", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const gate = deferred();
  let runningSignal: AbortSignal | undefined;
  const running = pool.run(async (ctx) => {
    runningSignal = ctx.signal;
    await gate.promise;
    return "ran on";
  });
  pool.pause();
  assert.equal(pool.paused, true);
  let started = 0;
  const queued = rangeInclusive(0, 2).map(() => pool.submit(() => ++started));
  await sleep(5);
  assert.equal(started, 0);
  assert.equal(pool.pending, 3);
  gate.resolve();
  assert.equal(await running, "ran on");
  assert.equal(runningSignal!.aborted, false);
  await sleep(1);
  assert.equal(started, 0); // a freed slot does not start anything either
  pool.resume();
  assert.equal(pool.active, 2); // started at once, up to the free slots
  await Promise.all(queued);
  assert.equal(started, 3);
});

Deno.test("Pool.close() resumes a paused pool so that draining finishes; pause() after close() does nothing", async () => {
  const pool = new Pool();
  pool.pause();
  const task = pool.submit(() => "drained");
  await pool.close();
  assert.equal(await task, "drained");
  pool.pause();
  assert.equal(pool.paused, false);
});

// ---- retry, timeout, rate limit ---------------------------------------------

Deno.test("Pool.run() retries with ctx.attempt counting from 1, then rejects with the last error", async () => {
  await using pool = new Pool({
    retry: { attempts: 3, delayMs: 1, jitter: false },
  });
  const attempts: number[] = [];
  await assert.rejects(
    pool.run((ctx) => {
      attempts.push(ctx.attempt);
      throw new Error(`attempt ${ctx.attempt}`);
    }),
    /attempt 3/,
  );
  assert.deepEqual(attempts, [1, 2, 3]);
  // And succeeds when an attempt does.
  let n = 0;
  assert.equal(
    await pool.submit(() => {
      if (++n < 2) throw new Error("flaky");
      return n;
    }),
    2,
  );
});

Deno.test("Pool retryIf decides per error; a retryIf that throws rejects with its error", async () => {
  let seen: TaskContext | undefined;
  await using pool = new Pool({
    retry: {
      attempts: 5,
      delayMs: 0,
      retryIf: (e, ctx) => {
        seen = ctx;
        if (String(e).includes("weird")) throw new Error("retryIf broke");
        return !String(e).includes("fatal");
      },
    },
  });
  let calls = 0;
  await assert.rejects(
    pool.submit(() => {
      calls++;
      throw new Error("fatal");
    }),
    /fatal/,
  );
  assert.equal(calls, 1);
  assert.equal(seen!.attempt, 1);
  await assert.rejects(
    pool.submit(() => {
      throw new Error("weird");
    }),
    /retryIf broke/,
  );
});

Deno.test("Pool retry frees the slot during the backoff, then the task runs before later equal-priority tasks", async () => {
  await using pool = new Pool({
    concurrency: 1,
    retry: { attempts: 2, delayMs: 5, jitter: false },
  });
  const order: string[] = [];
  let failed = false;
  const flaky = pool.submit(() => {
    order.push("flaky");
    if (!failed) {
      failed = true;
      throw new Error("once");
    }
  });
  // Starts in the slot freed by the backoff; its timer is armed after the
  // backoff's and lasts longer, so the retry is queued before it ends.
  const blocker = pool.submit(async () => {
    order.push("blocker");
    await sleep(20);
  });
  const later = pool.submit(() => order.push("later"));
  await Promise.all([flaky, blocker, later]);
  assert.deepEqual(order, ["flaky", "blocker", "flaky", "later"]);
});

Deno.test("Pool concurrency stays exact under retries", async () => {
  await using pool = new Pool({
    concurrency: 3,
    retry: { attempts: 4, delayMs: 2 },
  });
  const gauge = new Gauge();
  const failures = new Map<number, number>();
  const results = await Promise.all(
    rangeInclusive(0, 39).map((i) =>
      pool.run(async (ctx) => {
        gauge.enter();
        assert(ctx.workerId >= 0 && ctx.workerId < 3);
        await sleep(i % 4);
        gauge.leave();
        const f = failures.get(i) ?? 0;
        if (i % 3 === 0 && f < 2) {
          failures.set(i, f + 1);
          throw new Error("retry me");
        }
        return i;
      })
    ),
  );
  assert.deepEqual(results, rangeInclusive(0, 39));
  assert.equal(gauge.peak, 3);
});

Deno.test("Pool timeoutMs aborts ctx.signal with a TimeoutError and fails the attempt, then retries", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    timeoutMs: 10,
    retry: { attempts: 2, delayMs: 0 },
  });
  const t0 = time.now;
  const reasons: unknown[] = [];
  const abortedAt: number[] = [];
  const task = pool.run(async (ctx) => {
    await whenAborted(ctx.signal);
    reasons.push(ctx.signal.reason);
    abortedAt.push(time.now - t0);
    return "returned after the deadline"; // still a timeout
  });
  const failed = assert.rejects(task, TimeoutError);
  await time.runAllAsync();
  await failed;
  assert.equal(reasons.length, 2);
  assert(reasons.every((r) => r instanceof TimeoutError));
  assert.deepEqual(abortedAt, [10, 20]); // each attempt at its own deadline
  // A fast task is not affected, and its timer is cleared.
  assert.equal(await pool.run(() => "fast"), "fast");
  assert.equal(time.pending, 0);
  // submit() tasks are timed too.
  const t1 = performance.now();
  const timedOut = assert.rejects(pool.submit(() => sleep(40)), TimeoutError);
  await time.runAllAsync();
  await timedOut;
  // The slot was held until the task returned: two attempts of 40 ms.
  assert.equal(performance.now() - t1, 80);
});

Deno.test("Pool rateLimit allows at most `limit` starts in any sliding window", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    concurrency: 10,
    rateLimit: { limit: 3, intervalMs: 40 },
  });
  const starts: number[] = [];
  const t0 = performance.now();
  const all = Promise.all(
    rangeInclusive(0, 8).map(() =>
      pool.submit(() => {
        starts.push(performance.now());
      })
    ),
  );
  await time.runAllAsync();
  await all;
  assert.equal(starts.length, 9);
  for (let i = 0; i + 3 < starts.length; i++) {
    assert(
      starts[i + 3] - starts[i] >= 40,
      `starts ${i} and ${i + 3} are ${starts[i + 3] - starts[i]} ms apart`,
    );
  }
  // Three windows, each start as soon as the window lets it.
  assert.deepEqual(
    starts.map((t) => t - t0),
    [0, 0, 0, 40, 40, 40, 80, 80, 80],
  );
});

Deno.test("Pool rateLimit counts retries as starts and keeps priorities", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    concurrency: 1,
    rateLimit: { limit: 1, intervalMs: 15 },
    retry: { attempts: 2, delayMs: 0 },
  });
  const t0 = time.now;
  const order: string[] = [];
  let failed = false;
  const first = pool.submit(() => {
    order.push("first");
    if (!failed) {
      failed = true;
      throw new Error("again");
    }
  });
  const low = pool.run(() => order.push("low"), { priority: -1 });
  const high = pool.run(() => order.push("high"), { priority: 1 });
  const all = Promise.all([first, low, high]);
  await time.runAllAsync();
  await all;
  assert.deepEqual(order, ["first", "high", "first", "low"]);
  // One start per 15 ms window, retries included.
  assert.equal(time.now - t0, 45);
});

Deno.test("Pool.close({ cancelPending: true }) rejects tasks waiting out a backoff or the rate limit, and clears their timers", async () => {
  const pool = new Pool({
    concurrency: 2,
    retry: { attempts: 3, delayMs: 10_000 },
    rateLimit: { limit: 1, intervalMs: 10_000 },
  });
  let calls = 0;
  const backingOff = pool.submit(() => {
    calls++;
    throw new Error("retry later");
  });
  const rateLimited = pool.submit(() => calls++);
  await until(() => pool.pending === 2 && pool.active === 0, "waiting");
  await pool.close({ cancelPending: true });
  await assert.rejects(backingOff, { name: "AbortError" });
  await assert.rejects(rateLimited, { name: "AbortError" });
  assert.equal(calls, 1);
});

Deno.test("Pool rateLimit: a task aborted while waiting for its turn leaves no timer behind", async () => {
  const pool = new Pool({ rateLimit: { limit: 1, intervalMs: 10_000 } });
  assert.equal(await pool.submit(() => "first"), "first");
  const controller = new AbortController();
  const second = pool.run(() => "second", { signal: controller.signal });
  await tick();
  assert.equal(pool.pending, 1);
  controller.abort(new Error("gave up"));
  await assert.rejects(second, /gave up/);
  await pool.onIdle();
  // The pool is not closed: the sanitizers check that no timer is left.
});

Deno.test("Pool with concurrency Infinity starts every task at once, with distinct workerIds", async () => {
  await using pool = new Pool({ concurrency: Infinity });
  const gate = deferred();
  const ids: number[] = [];
  const tasks = rangeInclusive(0, 49).map(() =>
    pool.run(async (ctx) => {
      ids.push(ctx.workerId);
      await gate.promise;
    })
  );
  assert.equal(pool.active, 50);
  assert.equal(pool.pending, 0);
  gate.resolve();
  await Promise.all(tasks);
  assert.deepEqual(ids, rangeInclusive(0, 49));
  // Freed slots are reused: ids stay small.
  assert.deepEqual(await Promise.all([pool.run((c) => c.workerId)]), [49]);
});

Deno.test("Pool.submit() has freed its slot by the time its promise settles, with or without retry and timeout", async () => {
  for (
    const options of [
      { concurrency: 2 },
      { concurrency: 2, retry: { attempts: 2 }, timeoutMs: 1000 },
    ]
  ) {
    await using pool = new Pool(options);
    await pool.submit(async () => await tick());
    assert.equal(pool.active, 0);
    let started = 0;
    const a = pool.submit(async () => (started++, await tick()));
    const b = pool.submit(async () => (started++, await tick()));
    assert.equal(started, 2, JSON.stringify(options));
    await Promise.all([a, b]);
  }
});

// ---- map -----------------------------------------------------------------

Deno.test("Pool.map() yields in input order by default while tasks finish out of order", async () => {
  await using pool = new Pool({ concurrency: 4 });
  const gates = new Gates<number>();
  const out: number[] = [];
  const done = (async () => {
    for await (
      const x of pool.map(async (x: number) => {
        await gates.wait(x);
        return x * 10;
      }, [0, 1, 2, 3])
    ) out.push(x);
  })();
  await until(() => gates.started.length === 4, "all started");
  gates.open(3);
  gates.open(2);
  await sleep(2);
  assert.deepEqual(out, []); // waiting for item 0
  gates.open(0);
  await until(() => out.length === 1, "item 0");
  gates.open(1);
  await done;
  assert.deepEqual(out, [0, 10, 20, 30]);
});

Deno.test("Pool.map() with order: 'completion' yields each result as it finishes", async () => {
  await using pool = new Pool({ concurrency: 4 });
  const gates = new Gates<number>();
  const it = pool.map(
    async (x: number) => {
      await gates.wait(x);
      return x;
    },
    [0, 1, 2, 3],
    { order: "completion" },
  );
  const done = collect(it);
  await until(() => gates.started.length === 4, "all started");
  for (const i of [2, 0, 3, 1]) {
    gates.open(i);
    await sleep(1);
  }
  assert.deepEqual(await done, [2, 0, 3, 1]);
});

Deno.test("Pool.map() reads an AsyncIterable and passes (item, ctx)", async () => {
  await using pool = new Pool({ concurrency: 2 });
  async function* letters() {
    yield "a";
    await tick();
    yield "b";
    yield "c";
  }
  const out = await collect(
    pool.map((s: string, ctx) => `${s}${ctx.index}:${ctx.attempt}`, letters()),
  );
  assert.deepEqual(out, ["a0:1", "b1:1", "c2:1"]);
});

Deno.test("Pool.map() is lazy and reads an endless generator with bounded read-ahead", async () => {
  await using pool = new Pool({ concurrency: 4 });
  let pulled = 0;
  function* naturals() {
    for (let i = 0;; i++) {
      pulled++;
      yield i;
    }
  }
  const it = pool.map((x: number) => x, naturals(), { bufferSize: 8 });
  await tick();
  assert.equal(pulled, 0); // nothing before the first next()
  const first = await it.next();
  assert.deepEqual(first, { value: 0, done: false });
  await sleep(5);
  // At most bufferSize read and not yet yielded.
  assert(pulled <= 1 + 8, `pulled ${pulled}`);
  for (let i = 1; i < 100; i++) assert.equal((await it.next()).value, i);
  await sleep(5);
  assert(pulled <= 100 + 8, `pulled ${pulled}`);
  await it.return();
  await pool.onIdle();
});

Deno.test("Pool.map() keeps at most one of its tasks in the pool's queue, so other tasks get slots in turn", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const order: string[] = [];
  const gates = new Gates<number>();
  const it = pool.map(async (x: number) => {
    order.push(`map ${x}`);
    await gates.wait(x);
    return x;
  }, rangeInclusive(0, 9));
  const consumed = collect(it);
  await until(() => gates.started.length === 1, "map 0");
  await tick();
  assert.equal(pool.pending, 1); // map 1 waits, map 2.. are not read yet
  const other = pool.submit(() => order.push("other"));
  gates.open(0);
  await until(() => gates.started.length === 2, "map 1");
  await finishAll(gates, 10);
  await Promise.all([consumed, other]);
  assert.deepEqual(order.slice(0, 3), ["map 0", "map 1", "other"]);
});

Deno.test("Pool.map() rejects at the failing item's turn, after earlier results, and cancels the rest", async () => {
  await using pool = new Pool({ concurrency: 3 });
  const gates = new Gates<number>();
  const aborted: number[] = [];
  let returned = false;
  function* items() {
    try {
      for (let i = 0; i < 100; i++) yield i;
    } finally {
      returned = true;
    }
  }
  const out: number[] = [];
  const done = (async () => {
    for await (
      const x of pool.map(async (x: number, ctx) => {
        if (x === 1) throw new Error("item 1 failed");
        if (x === 2) {
          // Still running when the failure's turn comes: aborted.
          return await new Promise((_, reject) =>
            ctx.signal.addEventListener("abort", () => {
              aborted.push(x);
              reject(ctx.signal.reason);
            })
          );
        }
        await gates.wait(x);
        return x;
      }, items())
    ) out.push(x as number);
  })();
  await until(() => gates.started.includes(0), "item 0");
  await tick();
  gates.open(0);
  await assert.rejects(done, /item 1 failed/);
  assert.deepEqual(out, [0]);
  assert.deepEqual(aborted, [2]);
  assert.equal(returned, true);
  await pool.onIdle();
  assert(gates.started.length <= 4, `started ${gates.started}`); // reading stopped
});

Deno.test("Pool.map() in completion order fails at once and cancels the running tasks", async () => {
  await using pool = new Pool({ concurrency: 3 });
  const aborted: number[] = [];
  const it = pool.map(
    async (x: number, ctx) => {
      if (x === 2) {
        await tick();
        throw new Error("boom");
      }
      await untilAborted(ctx.signal).catch((e) => {
        aborted.push(x);
        throw e;
      });
    },
    [0, 1, 2],
    { order: "completion" },
  );
  await assert.rejects(collect(it), /boom/);
  assert.deepEqual(aborted.sort(), [0, 1]);
});

Deno.test("Pool.map() early break cancels the remaining tasks, closes the input and waits for running ones", async () => {
  await using pool = new Pool({ concurrency: 3 });
  let returned = false;
  let active = 0;
  function* items() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      returned = true;
    }
  }
  const signals: AbortSignal[] = [];
  for await (
    const x of pool.map(async (x: number, ctx) => {
      if (x === 0) return x;
      active++;
      signals.push(ctx.signal);
      await untilAborted(ctx.signal).finally(() => active--);
    }, items())
  ) {
    assert.equal(x, 0);
    break;
  }
  assert.equal(returned, true);
  assert.equal(active, 0); // break resumed after the running tasks returned
  assert(signals.length > 0 && signals.every((s) => s.aborted));
  assert.equal(pool.active + pool.pending, 0);
});

Deno.test("Pool.map() with a signal: aborting rejects the iteration with the reason and cancels its tasks", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const { controller, listeners } = countedSignal();
  const it = pool.map(
    (_: number, ctx) => untilAborted(ctx.signal),
    rangeInclusive(0, 9),
    {
      signal: controller.signal,
    },
  );
  const done = collect(it);
  await until(() => pool.active === 2, "running");
  controller.abort(new Error("user left"));
  await assert.rejects(done, /user left/);
  assert.equal(pool.active + pool.pending, 0);
  assert.equal(listeners(), 0);
});

Deno.test("Pool.map() throws an input error at its position", async () => {
  await using pool = new Pool({ concurrency: 2 });
  function* items() {
    yield 1;
    yield 2;
    throw new Error("source broke");
  }
  const out: number[] = [];
  await assert.rejects(async () => {
    for await (const x of pool.map((x: number) => x, items())) out.push(x);
  }, /source broke/);
  assert.deepEqual(out, [1, 2]);
  async function* asyncItems() {
    yield 1;
    throw new Error("async source broke");
  }
  await assert.rejects(
    collect(pool.map((x: number) => x, asyncItems())),
    /async source broke/,
  );
});

Deno.test("Pool.map() retries failed items under the pool's retry policy", async () => {
  await using pool = new Pool({
    concurrency: 2,
    retry: { attempts: 3, delayMs: 1 },
  });
  const tries = new Map<number, number>();
  const out = await collect(pool.map((x: number, ctx) => {
    tries.set(x, ctx.attempt);
    if (ctx.attempt < 2 && x % 2 === 0) throw new Error("flaky");
    return x;
  }, rangeInclusive(0, 9)));
  assert.deepEqual(out, rangeInclusive(0, 9));
  assert.equal(tries.get(0), 2);
  assert.equal(tries.get(1), 1);
});

Deno.test("Pool.map() after close() rejects; close() during a map lets submitted items finish, then rejects", async () => {
  const pool = new Pool({ concurrency: 1 });
  const gates = new Gates<number>();
  const out: number[] = [];
  const done = (async () => {
    for await (
      const x of pool.map(async (x: number) => {
        await gates.wait(x);
        return x;
      }, rangeInclusive(0, 9))
    ) out.push(x);
  })();
  await until(() => gates.started.length === 1, "first item");
  await tick();
  const closing = pool.close();
  await finishAll(gates, 2);
  await assert.rejects(done, TypeError);
  assert.deepEqual(out, [0, 1]); // the running and the queued one
  await closing;
  await assert.rejects(collect(pool.map((x: number) => x, [1])), TypeError);
});

Deno.test("Pool.map() rejects when the pool is cancelled", async () => {
  const pool = new Pool({ concurrency: 1 });
  const it = pool.map((_: number, ctx) => untilAborted(ctx.signal), [1, 2, 3]);
  const done = collect(it);
  await until(() => pool.active === 1, "running");
  await pool.close({ cancelPending: true });
  await assert.rejects(done, { name: "AbortError" });
});

Deno.test("Pool.map() reads a ReadableStream, and cancels it on an early break or a failure", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const stream = (cancelled: unknown[]) => {
    let i = 0;
    return new ReadableStream<number>({
      pull(controller) {
        if (i < 100) controller.enqueue(i++);
        else controller.close();
      },
      cancel(reason) {
        cancelled.push(reason);
      },
    }, { highWaterMark: 0 });
  };
  const whole: unknown[] = [];
  const small = new ReadableStream<number>({
    start(controller) {
      for (const x of [1, 2, 3]) controller.enqueue(x);
      controller.close();
    },
  });
  assert.deepEqual(await collect(pool.map((x: number) => x * 2, small)), [
    2,
    4,
    6,
  ]);
  for await (const x of pool.map((x: number) => x, stream(whole))) {
    assert.equal(x, 0);
    break;
  }
  await until(() => whole.length === 1, "cancelled on break");
  assert.equal((whole[0] as Error).name, "AbortError");
  const failed: unknown[] = [];
  const it = pool.map((x: number) => {
    if (x === 3) throw new Error("item 3 failed");
    return x;
  }, stream(failed));
  await assert.rejects(collect(it), /item 3 failed/);
  await until(() => failed.length === 1, "cancelled on failure");
});

Deno.test("Pool.map() calls an async iterator's return() on an early break", async () => {
  await using pool = new Pool({ concurrency: 2 });
  let i = 0;
  let returned = 0;
  const items: AsyncIterableIterator<number> = {
    next: () => Promise.resolve({ done: false, value: i++ }),
    return: () => {
      returned++;
      return Promise.resolve({ done: true, value: undefined });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  for await (const x of pool.map((x: number) => x, items)) {
    if (x === 2) break;
  }
  await until(() => returned === 1, "return() called");
  assert.equal(pool.active + pool.pending, 0);
});

// ---- every promise settles ---------------------------------------------------

Deno.test("Pool settles every promise it returned when cancelled in the middle of everything", async () => {
  const pool = new Pool({
    concurrency: 3,
    retry: { attempts: 5, delayMs: 5 },
    timeoutMs: 1000,
    rateLimit: { limit: 4, intervalMs: 20 },
  });
  const promises: Promise<unknown>[] = [];
  const track = (p: Promise<unknown>) => {
    p.catch(() => {}); // rejections are expected; allSettled checks them
    return p;
  };
  for (let i = 0; i < 40; i++) {
    const kind = i % 4;
    if (kind === 0) {
      promises.push(track(pool.submit(async () => {
        await sleep(i % 5);
        if (i % 8 === 0) throw new Error("flaky");
      })));
    } else if (kind === 1) {
      promises.push(
        track(pool.run((ctx) => untilAborted(ctx.signal), { priority: i % 3 })),
      );
    } else if (kind === 2) {
      const c = new AbortController();
      promises.push(track(pool.run(() => sleep(2), { signal: c.signal })));
      if (i % 6 === 0) c.abort();
    } else {
      promises.push(pool.run(() => i));
    }
  }
  promises.push(
    track(collect(pool.map((x: number) => sleep(x), rangeInclusive(0, 20)))),
  );
  const onIdle = pool.onIdle();
  const onSize = pool.onSizeLessThan(1);
  await sleep(15);
  await pool.close({ cancelPending: true });
  await withTimeout(
    Promise.allSettled([...promises, onIdle, onSize]),
    2000,
    "every promise settles",
  );
  assert.equal(pool.active + pool.pending, 0);
});

// ---- validation --------------------------------------------------------------

Deno.test("Pool() validates its options at the call site, naming the option and the value", () => {
  const cases: [unknown, string, string][] = [
    [
      { concurrency: 0 },
      "RangeError",
      "'concurrency' must be a positive integer or Infinity: current value is 0",
    ],
    [
      { concurrency: "2" },
      "TypeError",
      `'concurrency' must be a positive integer or Infinity: current value is "2"`,
    ],
    [
      { concurrency: 1.5 },
      "RangeError",
      "'concurrency' must be a positive integer or Infinity: current value is 1.5",
    ],
    [
      { timeoutMs: 0 },
      "RangeError",
      "'timeoutMs' must be a number of ms > 0 and <= 2147483647 (or Infinity for none): current value is 0",
    ],
    [
      { timeoutMs: NaN },
      "RangeError",
      "'timeoutMs' must be a number of ms > 0 and <= 2147483647 (or Infinity for none): current value is NaN",
    ],
    [
      { retry: { attempts: 0 } },
      "RangeError",
      "'retry.attempts' must be a positive integer: current value is 0",
    ],
    [
      { rateLimit: { limit: 1, intervalMs: -1 } },
      "RangeError",
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is -1",
    ],
    [
      { signal: "stop" },
      "TypeError",
      `'signal' must be an AbortSignal: current value is "stop"`,
    ],
    [5, "TypeError", "'options' must be an object: current value is 5"],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(
      () => new Pool(options as never),
      { name, message },
      JSON.stringify(options),
    );
  }
});

Deno.test("Pool.submit(), run(), map() and close() validate their arguments at the call site", async () => {
  await using pool = new Pool();
  assert.throws(() => pool.submit(42 as never), {
    name: "TypeError",
    message: "'fn' must be a function: current value is 42",
  });
  assert.throws(() => pool.run(() => 1, { priority: NaN }), {
    name: "RangeError",
    message: "'priority' must be a finite number: current value is NaN",
  });
  assert.throws(() => pool.run(() => 1, { priority: "high" as never }), {
    name: "TypeError",
    message: `'priority' must be a finite number: current value is "high"`,
  });
  assert.throws(() => pool.map((x) => x, 42 as never), {
    name: "TypeError",
    message:
      "'items' must be an Iterable, an AsyncIterable or a ReadableStream: current value is 42",
  });
  assert.throws(() => pool.map((x) => x, [1], { bufferSize: 0 }), {
    name: "RangeError",
    message: "'bufferSize' must be a positive integer: current value is 0",
  });
  assert.throws(() => pool.map((x) => x, [1], { order: "fifo" as never }), {
    name: "TypeError",
    message: `'order' must be "input" or "completion": current value is "fifo"`,
  });
  assert.throws(() => pool.close({ cancelPending: "yes" as never }), {
    name: "TypeError",
    message: `'cancelPending' must be a boolean: current value is "yes"`,
  });
  assert.equal(pool.closed, false);
});

// ---- the example ---------------------------------------------------------------

Deno.test("examples/pool.ts runs submit, priorities, map and asCompleted as it says", async () => {
  const { main } = await import("../examples/pool.ts");
  const lines: string[] = [];
  const r = await main((line) => lines.push(line));
  assert.equal(r.single, "user 1");
  assert.equal(r.urgentFirst, true);
  assert.deepEqual(r.mapped, [20, 21, 22, 23, 24, 25]);
  assert.equal(r.completed, 4);
  assert.equal(r.attempts, 15); // 13 calls, 2 of them retried once
  assert(lines.some((l) => l.startsWith("asCompleted: user")));
});
