import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import type { PoolStats } from "../lib/pool_stats.ts";
import { deferred, FakeTime, Gates, tick } from "./_helpers.ts";

const TYPES = [
  "queued",
  "active",
  "completed",
  "retrying",
  "failed",
  "cancelled",
  "idle",
  "concurrency",
] as const;

interface Seen {
  type: string;
  detail: Record<string, unknown>;
}

/** Records every event of `pool`, with its detail (timestamp dropped). */
function record(pool: Pool): Seen[] {
  const seen: Seen[] = [];
  for (const type of TYPES) {
    pool.addEventListener(type, (event: Event) => {
      const { timestamp, ...detail } = (event as CustomEvent).detail;
      assert.equal(typeof timestamp, "number");
      seen.push({ type, detail });
    });
  }
  return seen;
}

/** `type` and the task of each event, e.g. `active:1`. */
function brief(seen: Seen[]): string[] {
  return seen.map(({ type, detail }) =>
    detail.taskId === undefined ? type : `${type}:${detail.taskId}`
  );
}

/** Every count of a snapshot balances. */
function assertBalanced(s: PoolStats): void {
  assert.equal(
    s.submitted,
    s.completed + s.failed + s.cancelled + s.active + s.pending,
    JSON.stringify(s),
  );
  assert.equal(s.pending, s.queued + s.backingOff);
}

Deno.test("Pool events: a task that starts at once fires queued, active, completed, then idle once, with its details", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const seen = record(pool);
  assert.equal(await pool.run(() => "x", { priority: 3 }), "x");
  await pool.onIdle();
  assert.deepEqual(seen.map((s) => s.type), [
    "queued",
    "active",
    "completed",
    "idle",
  ]);
  assert.deepEqual(seen[0].detail, { taskId: 0, priority: 3 });
  assert.deepEqual(seen[1].detail, {
    taskId: 0,
    workerId: 0,
    attempt: 1,
    priority: 3,
  });
  const { durationMs, ...completed } = seen[2].detail;
  assert.deepEqual(completed, { taskId: 0, workerId: 0, attempt: 1 });
  assert.equal(typeof durationMs, "number");
  assert(!Number.isNaN(durationMs) && (durationMs as number) >= 0);
  assert.deepEqual(seen[3].detail, { completed: 1, failed: 0 });
});

Deno.test("Pool events: a task that waits fires queued when submitted and active only when a slot frees", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const seen = record(pool);
  const gates = new Gates<number>();
  const first = pool.submit(() => gates.wait(0));
  const second = pool.submit(() => gates.wait(1));
  assert.deepEqual(brief(seen), ["queued:0", "active:0", "queued:1"]);
  gates.open(0);
  await first;
  assert.deepEqual(brief(seen), [
    "queued:0",
    "active:0",
    "queued:1",
    "completed:0",
    "active:1",
  ]);
  assert.equal(seen[4].detail.workerId, 0); // the slot was handed on
  gates.open(1);
  await second;
  await pool.onIdle();
  assert.deepEqual(brief(seen).slice(5), ["completed:1", "idle"]);
});

Deno.test("Pool events: a task retried then succeeding fires active, retrying, active, completed with its attempts", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    retry: { attempts: 3, delayMs: 100, jitter: false },
  });
  const seen = record(pool);
  let calls = 0;
  const error = new Error("flaky");
  const task = pool.submit(() => {
    if (++calls === 1) throw error;
    return "ok";
  });
  await time.tickAsync(0);
  assert.deepEqual(seen.map((s) => s.type), ["queued", "active", "retrying"]);
  const { durationMs, ...retrying } = seen[2].detail;
  assert.deepEqual(retrying, {
    taskId: 0,
    workerId: 0,
    attempt: 1,
    error,
    delayMs: 100,
  });
  assert.equal(durationMs, 0); // virtual time
  assert.equal(pool.stats().backingOff, 1);
  await time.tickAsync(100);
  assert.equal(await task, "ok");
  await time.tickAsync(0);
  assert.deepEqual(seen.map((s) => s.type).slice(3), [
    "active",
    "completed",
    "idle",
  ]);
  assert.equal(seen[3].detail.attempt, 2);
  assert.equal(seen[4].detail.attempt, 2);
  const stats = pool.stats();
  assert.equal(stats.retried, 1);
  assert.equal(stats.completed, 1);
  assertBalanced(stats);
});

Deno.test("Pool events: a task that fails after its retries fires failed once, with the last error and attempt", async () => {
  using time = new FakeTime();
  await using pool = new Pool({ retry: { attempts: 2, delayMs: 10 } });
  const seen = record(pool);
  let n = 0;
  const task = pool.run(() => {
    throw new Error(`try ${++n}`);
  });
  task.catch(() => {});
  await time.runAllAsync();
  await assert.rejects(task, { message: "try 2" });
  await time.tickAsync(0);
  assert.deepEqual(seen.map((s) => s.type), [
    "queued",
    "active",
    "retrying",
    "active",
    "failed",
    "idle",
  ]);
  const failed = seen[4].detail;
  assert.equal(failed.attempt, 2);
  assert.equal((failed.error as Error).message, "try 2");
  assert.equal(failed.workerId, 0);
  assert.deepEqual(seen[5].detail, { completed: 0, failed: 1 });
  const stats = pool.stats();
  assert.equal(stats.failed, 1);
  assert.equal(stats.latency.count, 0); // latency counts successes only
});

Deno.test("Pool events: a plain task that throws fires failed with its error", async () => {
  await using pool = new Pool();
  const seen = record(pool);
  const error = new Error("boom");
  await assert.rejects(
    pool.submit(() => {
      throw error;
    }),
    error,
  );
  assert.deepEqual(seen.map((s) => s.type), [
    "queued",
    "active",
    "failed",
    "idle",
  ]);
  assert.equal(seen[2].detail.error, error);
});

Deno.test("Pool events: idle fires once when the last task settles, and again only after new work", async () => {
  await using pool = new Pool({ concurrency: 3 });
  let idle = 0;
  let activeAtIdle = -1;
  pool.addEventListener("idle", () => {
    idle++;
    activeAtIdle = pool.active + pool.pending;
  });
  const gates = new Gates<number>();
  const tasks = [0, 1, 2, 3, 4].map((i) => pool.submit(() => gates.wait(i)));
  for (const i of [3, 0, 1, 2]) {
    gates.open(i);
    await tick();
  }
  assert.equal(idle, 0);
  gates.open(4);
  await Promise.all(tasks);
  await pool.onIdle();
  assert.equal(idle, 1);
  assert.equal(activeAtIdle, 0); // fired once the last slot was free
  await pool.onIdle();
  assert.equal(idle, 1); // no transition, no event
  await pool.submit(() => Promise.resolve());
  await pool.onIdle();
  assert.equal(idle, 2);
});

Deno.test("Pool events: nothing is dispatched without listeners, and a listener added later sees only later events", async () => {
  await using pool = new Pool({ concurrency: 1 });
  let dispatched = 0;
  const dispatch = pool.dispatchEvent.bind(pool);
  pool.dispatchEvent = (event: Event) => {
    dispatched++;
    return dispatch(event);
  };
  const gates = new Gates<number>();
  const first = pool.submit(() => gates.wait(0));
  const second = pool.submit(() => gates.wait(1));
  gates.open(0);
  await first;
  assert.equal(dispatched, 0);
  const seen: string[] = [];
  pool.addEventListener("completed", (e) => seen.push(`${e.detail.taskId}`));
  pool.addEventListener("queued", (e) => seen.push(`q${e.detail.taskId}`));
  assert.equal(dispatched, 0);
  gates.open(1);
  await second;
  gates.open(2);
  await pool.submit(() => gates.wait(2));
  // Task 1's completion and task 2's events: nothing from before.
  assert.deepEqual(seen, ["1", "q2", "2"]);
  // Only the listened types were dispatched (no active, no idle).
  assert.equal(dispatched, 3);
});

Deno.test("Pool events: a listener added after a task started gets NaN durationMs for that untimed attempt", async () => {
  using _time = new FakeTime(); // durations of 0: no switch to timing all
  await using pool = new Pool();
  const gate = deferred();
  // Task 1: not sampled (one in 128, by task id), not timed.
  await pool.submit(() => Promise.resolve());
  const task = pool.submit(() => gate.promise);
  const durations: number[] = [];
  pool.addEventListener(
    "completed",
    (e) => durations.push(e.detail.durationMs),
  );
  gate.resolve();
  await task;
  await pool.submit(() => Promise.resolve());
  assert.equal(durations.length, 2);
  assert(Number.isNaN(durations[0]));
  assert(durations[1] >= 0);
});

Deno.test("Pool events: cancelled fires for queued and backing-off tasks dropped by close({ cancelPending })", async () => {
  using time = new FakeTime();
  const pool = new Pool({
    concurrency: 1,
    retry: { attempts: 2, delayMs: 50, jitter: false },
  });
  const seen = record(pool);
  const backingOff = pool.submit(() => {
    throw new Error("again");
  });
  await time.tickAsync(0);
  const gate = deferred();
  const running = pool.submit(() => gate.promise);
  const queued = pool.submit(() => "never");
  const closing = pool.close({ cancelPending: true });
  gate.resolve(); // close resolves once the running task has settled
  await closing;
  await Promise.allSettled([backingOff, running, queued]);
  const cancelled = seen.filter((s) => s.type === "cancelled");
  assert.deepEqual(cancelled.map((s) => s.detail.taskId).sort(), [0, 2]);
  const backedOff = cancelled.find((s) => s.detail.taskId === 0)!;
  assert.equal(backedOff.detail.attempt, 1);
  assert.equal((backedOff.detail.error as Error).name, "AbortError");
  const stats = pool.stats();
  assert.equal(stats.cancelled, 2);
  assertBalanced(stats);
});

Deno.test("Pool events: map() tasks carry their item's index beside the task id", async () => {
  await using pool = new Pool({ concurrency: 2 });
  await pool.submit(() => Promise.resolve()); // task 0
  const completed: [number, number | undefined][] = [];
  pool.addEventListener("completed", (e) => {
    completed.push([e.detail.taskId, e.detail.index]);
  });
  const out: number[] = [];
  for await (
    const x of pool.map((x: number) => Promise.resolve(x), [10, 11, 12])
  ) {
    out.push(x);
  }
  assert.deepEqual(out, [10, 11, 12]);
  assert.deepEqual(
    completed.map(([, index]) => index).sort(),
    [0, 1, 2],
  );
  for (const [taskId] of completed) assert(taskId >= 1);
});

// ---- stats() ----------------------------------------------------------------

Deno.test("Pool.stats() counts balance at every event and at the end", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    concurrency: 2,
    retry: { attempts: 2, delayMs: 5, jitter: false },
  });
  let checks = 0;
  for (const type of TYPES) {
    pool.addEventListener(type, () => {
      assertBalanced(pool.stats());
      checks++;
    });
  }
  const controller = new AbortController();
  const tasks = [
    pool.submit(() => Promise.resolve(1)),
    pool.submit(() => {
      throw new Error("always");
    }),
    pool.run((ctx) => ctx.attempt === 1 ? Promise.reject(1) : 2),
    pool.run(() => 3, { signal: controller.signal }),
    pool.submit(() => Promise.resolve(4)),
  ];
  for (const task of tasks) task.catch(() => {});
  assertBalanced(pool.stats());
  controller.abort(new Error("not wanted"));
  await time.runAllAsync();
  await Promise.allSettled(tasks);
  const stats = pool.stats();
  assertBalanced(stats);
  assert.equal(stats.submitted, 5);
  assert.equal(stats.completed, 3);
  assert.equal(stats.failed, 1);
  assert.equal(stats.cancelled, 1);
  assert.equal(stats.retried, 2);
  assert.equal(stats.active + stats.pending, 0);
  assert(checks > 10);
});

Deno.test("Pool.stats() latency counts every completed task once attempts are timed, and queueWait the time queued", async () => {
  using time = new FakeTime();
  await using pool = new Pool({ concurrency: 1 });
  pool.addEventListener("completed", () => {}); // times every attempt
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const tasks = [10, 20, 30].map((ms) => pool.submit(wait, ms));
  await time.runAllAsync();
  await Promise.all(tasks);
  const stats = pool.stats();
  assert.equal(stats.completed, 3);
  assert.equal(stats.latency.count, 3);
  assert.equal(stats.latency.min, 10);
  assert.equal(stats.latency.max, 30);
  assert.equal(stats.queueWait.count, 3);
  assert.equal(stats.queueWait.min, 0);
  assert.equal(stats.queueWait.max, 30); // the third waited 10 + 20 ms
  assert(stats.throughput > 0);
  assert.equal(stats.concurrency, 1);
});

Deno.test("Pool.stats() workers show the busy slots, their tasks and since when", async () => {
  using time = new FakeTime();
  await using pool = new Pool({ concurrency: 3 });
  pool.addEventListener("completed", () => {}); // times every attempt
  const gates = new Gates<number>();
  const tasks = [0, 1].map((i) => pool.run(() => gates.wait(i)));
  await time.tickAsync(7);
  let stats = pool.stats();
  assert.equal(stats.active, 2);
  assert.deepEqual(
    stats.workers.map((w) => [w.workerId, w.state, w.itemId]),
    [[0, "busy", 0], [1, "busy", 1]],
  );
  assert.equal(stats.workers[0].since, Date.now() - 7);
  gates.open(0);
  await tasks[0];
  stats = pool.stats();
  assert.deepEqual(stats.workers.map((w) => w.state), ["idle", "busy"]);
  assert.equal(stats.workers[0].since, undefined);
  gates.open(1);
  await tasks[1];
  assert.deepEqual(pool.stats().workers.map((w) => w.state), ["idle", "idle"]);
});

Deno.test("Pool.stats() of a fixed pool has no adaptive part; paused and closed are reported", async () => {
  const pool = new Pool({ concurrency: 4 });
  pool.pause();
  let stats = pool.stats();
  assert.equal(stats.adaptive, undefined);
  assert.equal(stats.paused, true);
  assert.equal(stats.closed, false);
  await pool.close();
  stats = pool.stats();
  assert.equal(stats.paused, false);
  assert.equal(stats.closed, true);
  assert.equal(stats.elapsedMs >= 0, true);
});
