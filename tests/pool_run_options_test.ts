// pool.run(fn, { retry, timeoutMs }): a call's own retry and deadline over
// the pool's (lib/pool.ts, lib/_pool_core.ts, lib/_pool_attempt.ts).
import assert from "node:assert/strict";
import { Pool, TimeoutError } from "../mod.ts";
import { FakeTime, sleep, whenAborted } from "./_helpers.ts";

/** A function that fails with `message` `times` times, then returns "ok". */
function flaky(times: number, message = "flaky") {
  const attempts: number[] = [];
  const fn = (ctx: { attempt: number }) => {
    attempts.push(ctx.attempt);
    if (ctx.attempt <= times) throw new Error(message);
    return "ok";
  };
  return { fn, attempts };
}

Deno.test("Pool.run() with retry retries that task on a pool without retry; other tasks still do not retry", async () => {
  await using pool = new Pool({ concurrency: 2 });
  const retried = flaky(2);
  assert.equal(
    await pool.run(retried.fn, { retry: { attempts: 3, delayMs: 0 } }),
    "ok",
  );
  assert.deepEqual(retried.attempts, [1, 2, 3]);
  const plain = flaky(1);
  await assert.rejects(pool.run(plain.fn), /flaky/);
  assert.deepEqual(plain.attempts, [1]);
  const stats = pool.stats();
  assert.equal(stats.retried, 2);
  assert.equal(stats.completed, 1);
  assert.equal(stats.failed, 1);
});

Deno.test("Pool.run() retry fields replace the pool's and the others stay the pool's (its retryIf is kept)", async () => {
  await using pool = new Pool({
    retry: {
      attempts: 5,
      delayMs: 0,
      retryIf: (e) => (e as Error).message === "transient",
    },
  });
  // attempts from the call, retryIf and delayMs from the pool.
  const transient = flaky(10, "transient");
  await assert.rejects(
    pool.run(transient.fn, { retry: { attempts: 2 } }),
    /transient/,
  );
  assert.deepEqual(transient.attempts, [1, 2]);
  const fatal = flaky(10, "fatal");
  await assert.rejects(
    pool.run(fatal.fn, { retry: { attempts: 4 } }),
    /fatal/,
  );
  assert.deepEqual(fatal.attempts, [1], "the pool's retryIf said no");
  // A field given as undefined keeps the pool's.
  const kept = flaky(10, "transient");
  await assert.rejects(
    pool.run(kept.fn, { retry: { attempts: undefined } }),
    /transient/,
  );
  assert.deepEqual(kept.attempts, [1, 2, 3, 4, 5]);
  // A retryIf of the call replaces the pool's.
  const own = flaky(2, "fatal");
  assert.equal(
    await pool.run(own.fn, { retry: { retryIf: () => true } }),
    "ok",
  );
  assert.deepEqual(own.attempts, [1, 2, 3]);
});

Deno.test("Pool.run() retry: { attempts: 1 } turns the pool's retry off for that task; false and null are refused with a TypeError", async () => {
  await using pool = new Pool({ retry: { attempts: 3, delayMs: 0 } });
  const once = flaky(5);
  await assert.rejects(pool.run(once.fn, { retry: { attempts: 1 } }), /flaky/);
  assert.deepEqual(once.attempts, [1]);
  const pooled = flaky(1);
  assert.equal(await pool.run(pooled.fn), "ok", "the pool's retry is intact");
  assert.deepEqual(pooled.attempts, [1, 2]);
  for (const retry of [false, null]) {
    assert.throws(
      () => pool.run(() => 1, { retry: retry as never }),
      {
        name: "TypeError",
        message: `'retry' must be an object: current value is ${retry}`,
      },
    );
  }
  assert.equal(pool.stats().submitted, 2, "a refused call is not taken");
});

Deno.test("Pool.run() timeoutMs gives that task its own deadline, shorter or longer than the pool's; Infinity means none", async () => {
  using time = new FakeTime();
  await using pool = new Pool({ concurrency: 3, timeoutMs: 100 });
  const t0 = time.now;
  const abortedAt: Record<string, number> = {};
  const waitAbort = (name: string) => async (ctx: { signal: AbortSignal }) => {
    await whenAborted(ctx.signal);
    abortedAt[name] = time.now - t0;
    throw ctx.signal.reason;
  };
  const short = pool.run(waitAbort("short"), { timeoutMs: 10 });
  const long = pool.run(waitAbort("long"), { timeoutMs: 300 });
  const pooled = pool.run(waitAbort("pool"));
  const shortFailed = assert.rejects(short, TimeoutError);
  const longFailed = assert.rejects(long, TimeoutError);
  const poolFailed = assert.rejects(pooled, TimeoutError);
  await time.runAllAsync();
  await Promise.all([shortFailed, longFailed, poolFailed]);
  assert.deepEqual(abortedAt, { short: 10, pool: 100, long: 300 });
  // Infinity: no deadline for this task, though the pool has one.
  const t1 = time.now;
  const free = pool.run(async (ctx) => {
    await sleep(500);
    return ctx.signal.aborted;
  }, { timeoutMs: Infinity });
  await time.runAllAsync();
  assert.equal(await free, false);
  assert.equal(time.now - t1, 500);
  assert.equal(time.pending, 0);
});

Deno.test("Pool.run() timeoutMs on a pool without one: the deadline aborts ctx.signal with a TimeoutError, then the call's retry applies", async () => {
  using time = new FakeTime();
  await using pool = new Pool();
  const t0 = time.now;
  const reasons: unknown[] = [];
  const abortedAt: number[] = [];
  const task = pool.run(async (ctx) => {
    await whenAborted(ctx.signal);
    reasons.push(ctx.signal.reason);
    abortedAt.push(time.now - t0);
    return "returned after the deadline"; // still a timeout
  }, { timeoutMs: 10, retry: { attempts: 2, delayMs: 0 } });
  const failed = assert.rejects(task, TimeoutError);
  await time.runAllAsync();
  await failed;
  assert.deepEqual(abortedAt, [10, 20]);
  assert(reasons.every((r) => r instanceof TimeoutError));
  // The plain tasks of the pool have no deadline.
  const t1 = time.now;
  const plain = pool.run(() => sleep(50).then(() => "plain"));
  await time.runAllAsync();
  assert.equal(await plain, "plain");
  assert.equal(time.now - t1, 50);
});

Deno.test("Pool.run() with its own retry backs off holding no slot and fires retrying events with the call's delay", async () => {
  using time = new FakeTime();
  await using pool = new Pool({ concurrency: 1 });
  const delays: number[] = [];
  pool.addEventListener("retrying", (e) => delays.push(e.detail.delayMs));
  const order: string[] = [];
  const task = pool.run((ctx) => {
    order.push(`flaky ${ctx.attempt}`);
    if (ctx.attempt === 1) throw new Error("once");
    return "ok";
  }, { retry: { attempts: 2, delayMs: 20, jitter: false } });
  const other = pool.submit(() => order.push("other"));
  await time.tickAsync(0);
  assert.deepEqual(order, ["flaky 1", "other"], "the slot was free meanwhile");
  assert.equal(pool.stats().backingOff, 1);
  await time.tickAsync(20);
  assert.equal(await task, "ok");
  await other;
  assert.deepEqual(order, ["flaky 1", "other", "flaky 2"]);
  assert.deepEqual(delays, [20]);
});

Deno.test("Pool.run() validates retry and timeoutMs like the pool's options, naming them; unknown names are refused", async () => {
  await using pool = new Pool();
  const run = (options: unknown) => () => pool.run(() => 1, options as never);
  assert.throws(run({ timeoutMs: 0 }), {
    name: "RangeError",
    message: /^'timeoutMs' must be .*: current value is 0$/,
  });
  assert.throws(run({ timeoutMs: "5" }), {
    name: "TypeError",
    message: /^'timeoutMs' must be .*: current value is "5"$/,
  });
  assert.throws(run({ retry: { attempts: 0 } }), {
    name: "RangeError",
    message:
      /^'retry.attempts' must be a positive integer: current value is 0$/,
  });
  assert.throws(run({ retry: { atempts: 2 } }), {
    name: "TypeError",
    message: /'atempts' is not an option of retry: did you mean 'attempts'\?/,
  });
  assert.throws(run({ timeout: 5 }), {
    name: "TypeError",
    message: /'timeout' is not an option of pool.run\(\)/,
  });
  // Checked over a pool's retry too.
  await using retrying = new Pool({ retry: { attempts: 2 } });
  assert.throws(
    () => retrying.run(() => 1, { retry: { factor: 0.5 } }),
    { name: "RangeError", message: /'retry.factor'/ },
  );
  assert.equal(pool.stats().submitted, 0);
});
