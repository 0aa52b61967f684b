import assert from "node:assert/strict";
import { Pool, type TaskContext } from "../mod.ts";
import type { PoolConcurrencyDetail } from "../lib/pool_stats.ts";
import { FakeTime, Gates, Gauge, prng, tick, ticks } from "./_helpers.ts";

/** The `concurrency` events of `pool`. */
function changes(pool: Pool): PoolConcurrencyDetail[] {
  const seen: PoolConcurrencyDetail[] = [];
  pool.addEventListener("concurrency", (e) => seen.push(e.detail));
  return seen;
}

Deno.test("pool.concurrency reads the option, Infinity included", async () => {
  await using one = new Pool();
  assert.equal(one.concurrency, 1);
  await using many = new Pool({ concurrency: 7 });
  assert.equal(many.concurrency, 7);
  await using all = new Pool({ concurrency: Infinity });
  assert.equal(all.concurrency, Infinity);
});

Deno.test("pool.concurrency = n raising it starts queued tasks before the setter returns", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const gates = new Gates<number>();
  const tasks = [0, 1, 2, 3].map((i) => pool.run(() => gates.wait(i)));
  assert.deepEqual(gates.started, [0]);
  pool.concurrency = 3;
  assert.deepEqual(gates.started, [0, 1, 2]); // same tick
  assert.equal(pool.active, 3);
  assert.equal(pool.pending, 1);
  assert.equal(pool.stats().concurrency, 3);
  pool.concurrency = Infinity;
  assert.deepEqual(gates.started, [0, 1, 2, 3]);
  for (const i of [0, 1, 2, 3]) gates.open(i);
  await Promise.all(tasks);
});

Deno.test("pool.concurrency = n raising it on a paused pool starts nothing until resume()", async () => {
  await using pool = new Pool({ concurrency: 1 });
  pool.pause();
  let ran = 0;
  const tasks = [0, 1, 2].map(() => pool.submit(() => ran++));
  pool.concurrency = 3;
  assert.equal(ran, 0);
  pool.resume();
  assert.equal(ran, 3);
  await Promise.all(tasks);
});

Deno.test("pool.concurrency = n lowering it interrupts no running task and starts none until fewer than n run", async () => {
  await using pool = new Pool({ concurrency: 4 });
  const gates = new Gates<number>();
  const aborted: number[] = [];
  const tasks = [0, 1, 2, 3, 4, 5].map((i) =>
    pool.run((ctx: TaskContext) => {
      ctx.signal.addEventListener("abort", () => aborted.push(i));
      return gates.wait(i);
    })
  );
  assert.deepEqual(gates.started, [0, 1, 2, 3]);
  pool.concurrency = 2;
  assert.equal(pool.active, 4); // nothing interrupted
  gates.open(0);
  await tasks[0];
  assert.equal(pool.active, 3); // 3 running > 2: task 4 waits
  assert.deepEqual(gates.started, [0, 1, 2, 3]);
  gates.open(1);
  await tasks[1];
  assert.equal(pool.active, 2); // 2 running: still not under the limit
  assert.deepEqual(gates.started, [0, 1, 2, 3]);
  gates.open(2);
  await tasks[2];
  assert.deepEqual(gates.started, [0, 1, 2, 3, 4]); // 1 running < 2
  assert.equal(pool.active, 2);
  for (const i of [3, 4, 5]) gates.open(i);
  await Promise.all(tasks);
  assert.deepEqual(aborted, []);
});

Deno.test("pool.concurrency changes keep ctx.workerId unique among running tasks, below the highest limit", async () => {
  const random = prng(19);
  await using pool = new Pool({ concurrency: 3 });
  const gates = new Gates<number>();
  const running = new Map<number, number>(); // workerId -> task
  const gauge = new Gauge();
  let highest = 3;
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    tasks.push(pool.run(async (ctx) => {
      assert(!running.has(ctx.workerId), `worker ${ctx.workerId} reused`);
      assert(ctx.workerId < highest);
      running.set(ctx.workerId, i);
      gauge.enter();
      await gates.wait(i);
      gauge.leave();
      running.delete(ctx.workerId);
    }));
    if (random() < 0.2) {
      const limit = 1 + Math.floor(random() * 6);
      highest = Math.max(highest, limit);
      pool.concurrency = limit;
    }
    if (random() < 0.5) {
      const started = gates.started;
      gates.open(started[Math.floor(random() * started.length)]);
      await tick();
    }
  }
  while (pool.active + pool.pending > 0) {
    gates.openAll();
    await tick();
  }
  await Promise.all(tasks);
  assert(gauge.peak <= highest);
});

Deno.test("pool.concurrency = n never starts more than n once running tasks drain below it", async () => {
  await using pool = new Pool({ concurrency: 5 });
  const gauge = new Gauge();
  const gates = new Gates<number>();
  const tasks = Array.from({ length: 12 }, (_, i) =>
    pool.run(async () => {
      gauge.enter();
      await gates.wait(i);
      gauge.leave();
    }));
  pool.concurrency = 2;
  for (let i = 0; i < 5; i++) gates.open(i); // the five first
  await tick();
  gauge.peak = gauge.current;
  while (gates.started.length < 12) {
    gates.openAll();
    await tick();
    assert(gauge.peak <= 2, `peak ${gauge.peak}`);
  }
  gates.openAll();
  await Promise.all(tasks);
});

Deno.test("pool.concurrency = n throws a RangeError or TypeError naming 'concurrency' and the value", async () => {
  await using pool = new Pool({ concurrency: 2 });
  for (const bad of [0, -1, 1.5, NaN, -Infinity]) {
    assert.throws(() => (pool.concurrency = bad), {
      name: "RangeError",
      message:
        `'concurrency' must be a positive integer or Infinity: current value is ${bad}`,
    });
  }
  for (const bad of ["2", null, undefined, {}]) {
    assert.throws(
      () => (pool.concurrency = bad as unknown as number),
      (e: Error) => e instanceof TypeError && /'concurrency'/.test(e.message),
    );
  }
  assert.equal(pool.concurrency, 2);
});

Deno.test("pool.concurrency = n fires a concurrency event with from, to and reason 'set', and none when unchanged", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const seen = changes(pool);
  pool.concurrency = 5;
  pool.concurrency = 5;
  pool.concurrency = 1;
  assert.deepEqual(
    seen.map(({ from, to, reason }) => ({ from, to, reason })),
    [{ from: 2, to: 5, reason: "set" }, { from: 5, to: 1, reason: "set" }],
  );
  assert.equal(typeof seen[0].timestamp, "number");
});

Deno.test("pool.concurrency = n works while the pool drains and throws once it is cancelled or drained", async () => {
  const pool = new Pool({ concurrency: 1 });
  const gates = new Gates<number>();
  const tasks = [0, 1, 2].map((i) => pool.run(() => gates.wait(i)));
  const closing = pool.close();
  pool.concurrency = 3; // draining: the queued tasks start at once
  assert.deepEqual(gates.started, [0, 1, 2]);
  gates.openAll();
  await Promise.all(tasks);
  await closing;
  assert.throws(() => (pool.concurrency = 2), {
    name: "TypeError",
    message: /closed and drained/,
  });
  const cancelled = new Pool();
  await cancelled.close({ cancelPending: true });
  assert.throws(() => (cancelled.concurrency = 2), {
    name: "TypeError",
    message: /cancelled/,
  });
});

// ---- adaptive ---------------------------------------------------------------

Deno.test("new Pool({ concurrency: { adaptive } }) validates min, max and initial", () => {
  assert.throws(
    () => new Pool({ concurrency: { adaptive: { min: 0, max: 4 } } }),
    RangeError,
  );
  assert.throws(
    () => new Pool({ concurrency: { adaptive: { min: 4, max: 2 } } }),
    RangeError,
  );
  assert.throws(
    () =>
      new Pool({ concurrency: { adaptive: { min: 1, max: 4, initial: 9 } } }),
    RangeError,
  );
  assert.throws(
    () => new Pool({ concurrency: {} as never }),
    TypeError,
  );
});

Deno.test("an adaptive pool starts at initial (default min), reports its limits in stats() and refuses pool.concurrency = n", async () => {
  await using pool = new Pool({
    concurrency: { adaptive: { min: 2, max: 8, initial: 4 } },
  });
  assert.equal(pool.concurrency, 4);
  const { adaptive } = pool.stats();
  assert.equal(adaptive?.min, 2);
  assert.equal(adaptive?.max, 8);
  assert.equal(adaptive?.limit, 4);
  assert.equal(adaptive?.history.at(-1)?.limit, 4);
  assert.throws(() => (pool.concurrency = 3), {
    name: "TypeError",
    message: /adaptive/,
  });
  await using low = new Pool({ concurrency: { adaptive: { min: 3, max: 5 } } });
  assert.equal(low.concurrency, 3);
});

/**
 * Runs `n` tasks on `pool`, each taking 10 ms of virtual time and throwing
 * `{ status: 429 }` when more than `k` run at once.
 */
async function overload(
  time: FakeTime,
  pool: Pool,
  n: number,
  k: number,
): Promise<void> {
  const gauge = new Gauge();
  const tasks: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    tasks.push(pool.submit(async () => {
      gauge.enter();
      try {
        const over = gauge.current > k;
        await new Promise((r) => setTimeout(r, 10));
        if (over) throw { status: 429 };
        return i;
      } finally {
        gauge.leave();
      }
    }));
  }
  for (const task of tasks) task.catch(() => {});
  await time.runAllAsync();
  await Promise.allSettled(tasks);
}

Deno.test("an adaptive pool lowers its limit after 429 overload errors, stays within [min, max] and records the changes", async () => {
  using time = new FakeTime();
  await using pool = new Pool({
    concurrency: { adaptive: { min: 1, max: 16, initial: 12 } },
  });
  const seen = changes(pool);
  await overload(time, pool, 200, 3);
  assert(seen.length > 0, "the limit never moved");
  for (const { from, to, reason } of seen) {
    assert.equal(reason, "adaptive");
    assert(to >= 1 && to <= 16 && from >= 1 && from <= 16);
  }
  // It moved down after the first overload errors.
  assert(seen.some(({ from, to }) => to < from), "never lowered");
  assert(Math.min(...seen.map((c) => c.to)) < 12);
  const stats = pool.stats();
  const history = stats.adaptive!.history;
  assert(history.length > 1);
  for (const change of history) {
    assert(change.limit >= 1 && change.limit <= 16);
    assert.equal(typeof change.at, "number");
  }
  assert.equal(history.at(-1)!.limit, pool.concurrency);
  assert.equal(stats.concurrency, pool.concurrency);
  assert.equal(stats.completed + stats.failed, 200);
});

Deno.test("an adaptive pool counts errors that retryIf calls retryable as overload, asking retryIf once per error", async () => {
  using time = new FakeTime();
  let retryIfCalls = 0;
  await using pool = new Pool({
    concurrency: { adaptive: { min: 1, max: 10, initial: 10 } },
    retry: {
      attempts: 2,
      delayMs: 1,
      retryIf: (e) => {
        retryIfCalls++;
        return (e as Error).message === "busy";
      },
    },
  });
  const seen = changes(pool);
  const tasks = Array.from({ length: 40 }, () =>
    pool.submit(async () => {
      await new Promise((r) => setTimeout(r, 10));
      throw new Error("busy");
    }));
  for (const task of tasks) task.catch(() => {});
  await time.runAllAsync();
  await Promise.allSettled(tasks);
  assert(seen.some(({ from, to }) => to < from), "never lowered");
  for (const { to } of seen) assert(to >= 1 && to <= 10);
  assert.equal(pool.stats().failed, 40);
  // Two failed attempts per task: the retry's decision, then the last
  // attempt's (asked for the adaptive limit only), never twice per error.
  assert.equal(retryIfCalls, 80);
});

Deno.test("pool.map() follows pool.concurrency raised while it runs, within its bufferSize", async () => {
  await using pool = new Pool({ concurrency: 1 });
  const gates = new Gates<number>();
  const items = Array.from({ length: 12 }, (_, i) => i);
  let read = 0;
  function* source() {
    for (const i of items) {
      read++;
      yield i;
    }
  }
  const it = pool.map((i: number) => gates.wait(i).then(() => i), source(), {
    bufferSize: 6,
  });
  const first = it.next();
  await ticks();
  assert.deepEqual(gates.started, [0]);
  pool.concurrency = 4;
  await ticks();
  assert.deepEqual(gates.started, [0, 1, 2, 3], "the map uses the new slots");
  assert.ok(read <= 6, `read ${read} within bufferSize 6`);
  gates.openAll();
  const out = [(await first).value];
  for (let r = await it.next(); !r.done; r = await it.next()) {
    out.push(r.value);
    gates.openAll();
  }
  assert.deepEqual(out, items);
});

Deno.test("pool.map() on an adaptive pool can use more than its initial limit", async () => {
  await using pool = new Pool({
    concurrency: { adaptive: { min: 1, max: 16 } },
  });
  const gauge = new Gauge();
  const out: number[] = [];
  for await (
    const x of pool.map(async (i: number) => {
      gauge.enter();
      await tick();
      gauge.leave();
      return i;
    }, Array.from({ length: 300 }, (_, i) => i))
  ) out.push(x);
  assert.equal(out.length, 300);
  assert.ok(gauge.peak > 2, `peak ${gauge.peak}: more than initial + 1`);
});
