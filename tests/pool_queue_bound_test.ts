// new Pool({ maxQueued, onFull }): the bound on the queue, the tasks waiting
// for room and the refusals (lib/pool.ts, lib/_pool_core.ts,
// lib/_pool_room.ts).
import assert from "node:assert/strict";
import { Pool, type PoolStats, QueueFullError } from "../mod.ts";
import {
  collect,
  countedSignal,
  deferred,
  FakeTime,
  Gates,
  tick,
} from "./_helpers.ts";

/** Every count of a snapshot balances; tasks waiting for room are apart. */
function assertBalanced(s: PoolStats): void {
  assert.equal(
    s.submitted,
    s.completed + s.failed + s.cancelled + s.active + s.pending,
    JSON.stringify(s),
  );
  assert.equal(s.pending, s.queued + s.backingOff);
}

/** Queued, waiting (for room) and running counts of `pool`. */
function counts(pool: Pool): [number, number, number] {
  const s = pool.stats();
  assertBalanced(s);
  return [s.active, s.queued, s.waiting];
}

Deno.test("new Pool() refuses a bad maxQueued or onFull with a RangeError or TypeError naming the option and the value", () => {
  const cases: [unknown, string, string][] = [
    [
      { maxQueued: 0 },
      "RangeError",
      "'maxQueued' must be a positive integer or Infinity: current value is 0",
    ],
    [
      { maxQueued: 1.5 },
      "RangeError",
      "'maxQueued' must be a positive integer or Infinity: current value is 1.5",
    ],
    [
      { maxQueued: -1 },
      "RangeError",
      "'maxQueued' must be a positive integer or Infinity: current value is -1",
    ],
    [
      { maxQueued: "3" },
      "TypeError",
      `'maxQueued' must be a positive integer or Infinity: current value is "3"`,
    ],
    [
      { onFull: "drop" },
      "TypeError",
      `'onFull' must be "wait" or "reject": current value is "drop"`,
    ],
    [
      { maxQueue: 3 },
      "TypeError",
      "'maxQueue' is not an option of new Pool(): did you mean 'maxQueued'?",
    ],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(() => new Pool(options as never), { name, message });
  }
});

Deno.test('Pool maxQueued with onFull: "reject" refuses a submit() or run() at once with a QueueFullError naming the bound, and takes tasks again once there is room', async () => {
  await using pool = new Pool({
    concurrency: 1,
    maxQueued: 2,
    onFull: "reject",
  });
  const gates = new Gates<string>();
  const running = pool.submit(() => gates.wait("a"));
  const queued = [pool.submit(() => "b"), pool.run(() => "c")];
  assert.deepEqual(counts(pool), [1, 2, 0]);
  let ran = false;
  const refused = [
    pool.submit(() => (ran = true)),
    pool.run(() => (ran = true), { priority: 10 }),
  ];
  for (const task of refused) {
    await assert.rejects(task, (e) => {
      assert(e instanceof QueueFullError);
      assert.equal(e.maxQueueSize, 2);
      assert.equal(
        e.message,
        "The pool's queue is full (maxQueued: 2; 1 running, 2 queued): the task was not taken",
      );
      return true;
    });
  }
  assert.equal(ran, false);
  assert.equal(pool.stats().submitted, 3, "refused tasks are not taken");
  gates.open("a");
  await running;
  assert.deepEqual(await Promise.all(queued), ["b", "c"]);
  // Room again.
  assert.equal(await pool.submit(() => "d"), "d");
  assertBalanced(pool.stats());
});

Deno.test("Pool maxQueued: a task that can start at once never waits; only queued tasks count toward the bound", async () => {
  await using pool = new Pool({
    concurrency: 2,
    maxQueued: 1,
    onFull: "reject",
  });
  const gates = new Gates<number>();
  const tasks = [0, 1, 2].map((i) => pool.submit(() => gates.wait(i)));
  assert.deepEqual(counts(pool), [2, 1, 0]);
  await assert.rejects(pool.submit(() => 3), QueueFullError);
  gates.openAll();
  gates.open(2);
  await Promise.all(tasks);
});

Deno.test('Pool maxQueued with onFull: "wait" holds tasks outside the queue in arrival order, whatever their priority, and lets them in as room frees', async () => {
  await using pool = new Pool({ concurrency: 1, maxQueued: 2 });
  const queuedIds: number[] = [];
  pool.addEventListener("queued", (e) => queuedIds.push(e.detail.taskId));
  const gates = new Gates<string>();
  const order: string[] = [];
  const task = (name: string, priority = 0) =>
    pool.run(async () => {
      order.push(name);
      await gates.wait(name);
      return name;
    }, { priority });
  const all = [
    task("a"), // runs
    task("b"), // queued
    task("c"), // queued
    task("d", 1), // waits for room
    task("e", 5), // waits for room, after d
  ];
  assert.deepEqual(counts(pool), [1, 2, 2]);
  assert.deepEqual(
    queuedIds,
    [0, 1, 2],
    "a task waiting for room is not taken",
  );
  assert.equal(pool.pending, 2);
  const peak = { queued: 0 };
  const watch = () => {
    peak.queued = Math.max(peak.queued, pool.stats().queued);
  };
  for (const name of ["a", "b", "c", "d", "e"]) {
    gates.open(name);
    await tick();
    watch();
  }
  assert.deepEqual(await Promise.all(all), ["a", "b", "c", "d", "e"]);
  // d entered (first: it came first) when b started, and went ahead of c by
  // its priority; e entered when d started, and went ahead of c too.
  assert.deepEqual(order, ["a", "b", "d", "e", "c"]);
  assert.deepEqual(queuedIds, [0, 1, 2, 3, 4]);
  assert(peak.queued <= 2);
  assert.deepEqual(counts(pool), [0, 0, 0]);
  assert.equal(pool.stats().submitted, 5);
});

Deno.test('Pool maxQueued with onFull: "wait": a task waiting for room waits behind those already waiting, even when the queue has room again', async () => {
  await using pool = new Pool({ concurrency: 1, maxQueued: 1 });
  pool.pause();
  const order: number[] = [];
  const tasks = [0, 1, 2, 3].map((i) => pool.submit(() => order.push(i)));
  assert.deepEqual(counts(pool), [0, 1, 3]);
  pool.resume();
  await Promise.all(tasks);
  assert.deepEqual(order, [0, 1, 2, 3]);
});

Deno.test("Pool maxQueued: a run() signal ends the wait for room, rejecting with its reason and removing its listener; the others keep their place", async () => {
  await using pool = new Pool({ concurrency: 1, maxQueued: 1 });
  const blocker = deferred();
  const first = pool.submit(() => blocker.promise);
  const second = pool.submit(() => "second");
  const { controller, listeners } = countedSignal();
  let ran = false;
  const aborted = pool.run(() => (ran = true), { signal: controller.signal });
  const after = pool.submit(() => "after");
  assert.equal(listeners(), 1);
  assert.equal(pool.stats().waiting, 2);
  const reason = new Error("changed my mind");
  controller.abort(reason);
  await assert.rejects(aborted, (e) => e === reason);
  assert.equal(listeners(), 0);
  assert.deepEqual(counts(pool), [1, 1, 1]);
  blocker.resolve();
  assert.deepEqual(await Promise.all([first, second, after]), [
    undefined,
    "second",
    "after",
  ]);
  assert.equal(ran, false);
  assert.equal(pool.stats().cancelled, 0, "it was never taken");
  // A run() that entered keeps listening to its signal as a queued task.
  const gate = deferred();
  const busy = pool.submit(() => gate.promise);
  const { controller: c2, listeners: l2 } = countedSignal();
  const entered = pool.run(() => "entered", { signal: c2.signal });
  const last = pool.run(() => "waited", { signal: c2.signal });
  assert.equal(l2(), 2);
  gate.resolve();
  assert.deepEqual(await Promise.all([busy, entered, last]), [
    undefined,
    "entered",
    "waited",
  ]);
  assert.equal(l2(), 0);
});

Deno.test("Pool maxQueued: close() drains the tasks waiting for room; close({ cancelPending: true }) rejects them with the AbortError", async () => {
  const pool = new Pool({ concurrency: 1, maxQueued: 1 });
  const gate = deferred();
  const tasks = [
    pool.submit(() => gate.promise.then(() => 0)),
    pool.submit(() => 1),
    pool.submit(() => 2),
    pool.submit(() => 3),
  ];
  let closed = false;
  const closing = pool.close().then(() => (closed = true));
  await assert.rejects(pool.submit(() => 4), TypeError);
  await tick();
  assert.equal(closed, false);
  gate.resolve();
  await closing;
  assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3]);
  assert.equal(pool.stats().submitted, 4);

  const cancelled = new Pool({ concurrency: 1, maxQueued: 1 });
  const { controller, listeners } = countedSignal();
  const running = cancelled.run((ctx) =>
    new Promise((_, reject) =>
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
    )
  );
  const queued = cancelled.submit(() => "never");
  const waiting = [
    cancelled.submit(() => "never"),
    cancelled.run(() => "never", { signal: controller.signal }),
  ];
  assert.equal(listeners(), 1);
  await cancelled.close({ cancelPending: true });
  for (const task of [running, queued, ...waiting]) {
    await assert.rejects(task, { name: "AbortError" });
  }
  assert.equal(listeners(), 0);
  const s = cancelled.stats();
  assertBalanced(s);
  assert.equal(s.waiting, 0);
  assert.equal(s.submitted, 2, "the tasks waiting for room were never taken");
});

Deno.test("Pool maxQueued: aborting the pool's signal rejects the tasks waiting for room with its reason", async () => {
  const controller = new AbortController();
  await using pool = new Pool({
    concurrency: 1,
    maxQueued: 1,
    signal: controller.signal,
  });
  const gate = deferred();
  const running = pool.submit(() => gate.promise);
  const queued = pool.submit(() => "never");
  const waiting = pool.submit(() => "never");
  const reason = new Error("shutting down");
  controller.abort(reason);
  await assert.rejects(queued, (e) => e === reason);
  await assert.rejects(waiting, (e) => e === reason);
  gate.resolve();
  await running;
  assert.equal(pool.stats().waiting, 0);
});

Deno.test("Pool maxQueued: onIdle() waits for the tasks waiting for room, onSizeLessThan() counts the queue only", async () => {
  await using pool = new Pool({ concurrency: 1, maxQueued: 1 });
  const gate = deferred();
  let done = 0;
  pool.submit(() => gate.promise.then(() => done++));
  pool.submit(() => done++);
  pool.submit(() => done++);
  let idle = false;
  const idling = pool.onIdle().then(() => (idle = true));
  let small = false;
  const smaller = pool.onSizeLessThan(1).then(() => (small = true));
  await tick();
  assert.equal(idle, false);
  assert.equal(small, false);
  gate.resolve();
  await Promise.all([idling, smaller]);
  assert.equal(done, 3);
});

Deno.test("Pool maxQueued: tasks backing off before a retry do not count and re-enter the queue even when it is full", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    concurrency: 1,
    maxQueued: 1,
    retry: { attempts: 2, delayMs: 10, jitter: false },
  });
  const gates = new Gates<string>();
  const order: string[] = [];
  let failed = false;
  const flaky = pool.submit(() => {
    order.push("flaky");
    if (!failed) {
      failed = true;
      throw new Error("once");
    }
    return "flaky";
  });
  const task = (name: string) =>
    pool.submit(async () => {
      order.push(name);
      await gates.wait(name);
      return name;
    });
  await time.tickAsync(0);
  assert.equal(pool.stats().backingOff, 1);
  const b = task("b"); // runs in the slot the backoff freed
  const c = task("c"); // queued: the backoff does not count
  assert.deepEqual(counts(pool), [1, 1, 0]);
  await time.tickAsync(10);
  // Back from its backoff into a full queue: it is there, beyond the bound.
  assert.deepEqual(counts(pool), [1, 2, 0]);
  const d = task("d");
  assert.equal(pool.stats().waiting, 1);
  gates.open("b");
  await time.tickAsync(0);
  // flaky (back first, by its original place) started; d entered.
  assert.deepEqual(counts(pool), [1, 1, 0]);
  gates.open("c");
  gates.open("d");
  await time.runAllAsync();
  assert.deepEqual(await Promise.all([flaky, b, c, d]), [
    "flaky",
    "b",
    "c",
    "d",
  ]);
  assert.deepEqual(order, ["flaky", "b", "flaky", "c", "d"]);
});

Deno.test('Pool.map() on a pool with maxQueued 1 does not deadlock: its tasks count toward the bound and wait for room, also with onFull: "reject"', async () => {
  for (const onFull of ["wait", "reject"] as const) {
    await using pool = new Pool({ concurrency: 1, maxQueued: 1, onFull });
    // Alone.
    const alone = await collect(
      pool.map(async (x: number) => {
        await tick();
        return x * 2;
      }, [1, 2, 3, 4, 5]),
    );
    assert.deepEqual(alone, [2, 4, 6, 8, 10], onFull);
    // With other tasks filling the queue meanwhile.
    const gate = deferred();
    const blocker = pool.submit(() => gate.promise.then(() => "blocker"));
    const other = pool.submit(() => "other");
    const mapped = collect(pool.map((x: number) => x + 1, [1, 2, 3]));
    await tick();
    // Two of the map's tasks (concurrency + 1) wait, not refused.
    assert.equal(pool.stats().waiting, 2, onFull);
    gate.resolve();
    assert.deepEqual(await mapped, [2, 3, 4], onFull);
    assert.deepEqual(await Promise.all([blocker, other]), ["blocker", "other"]);
    assertBalanced(pool.stats());
    assert.equal(pool.stats().waiting, 0);
  }
});

Deno.test("Pool.map() stopped early while its task waits for room: the task never runs and nothing is left waiting", async () => {
  await using pool = new Pool({ concurrency: 1, maxQueued: 1 });
  const gate = deferred();
  const blocker = pool.submit(() => gate.promise);
  const other = pool.submit(() => "other");
  const ran: number[] = [];
  const it = pool.map((x: number) => ran.push(x), [1, 2, 3]);
  const first = it.next();
  await tick();
  assert.equal(pool.stats().waiting, 2);
  const stopped = it.return();
  gate.resolve();
  await stopped;
  await first.catch(() => {});
  await Promise.all([blocker, other]);
  await pool.onIdle();
  assert.deepEqual(ran, []);
  assert.equal(pool.stats().waiting, 0);
  assertBalanced(pool.stats());
});
