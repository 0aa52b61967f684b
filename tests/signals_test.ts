// ctx.signal without listener pile-ups (issue 17 item 6): each worker slot
// (of a stage, of a Pool) has its own signal, so no signal collects more
// abort listeners than the one call using it (Node warns from 11 on one
// signal). Stopping a run or cancelling a pool still aborts every running
// call's signal with its reason; one slot's timeout or abort leaves the other
// slots' signals alone.
import assert from "node:assert/strict";
import { map, pipeline, Pool, type TaskContext } from "../mod.ts";

const CONCURRENCY = 16;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

function abortable(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else {
      signal.addEventListener("abort", () => reject(signal.reason), {
        once: true,
      });
    }
  });
}

/**
 * Counts the abort listeners on every AbortSignal while `body` runs, from the
 * calls and from sluice alike (what Node counts for its warning): `max` is the
 * most any one signal had at once.
 */
async function countingListeners(
  body: () => Promise<void>,
): Promise<{ max: number; signals: number }> {
  const live = new Map<AbortSignal, Set<unknown>>();
  let max = 0;
  const proto = AbortSignal.prototype as unknown as Record<string, unknown>;
  const add = EventTarget.prototype.addEventListener;
  const remove = EventTarget.prototype.removeEventListener;
  proto.addEventListener = function (
    this: AbortSignal,
    type: string,
    listener: unknown,
    options?: unknown,
  ) {
    if (type === "abort" && listener != null && !this.aborted) {
      let set = live.get(this);
      if (set === undefined) live.set(this, set = new Set());
      set.add(listener);
      max = Math.max(max, set.size);
    }
    return add.call(
      this,
      type,
      listener as EventListener,
      options as AddEventListenerOptions,
    );
  };
  proto.removeEventListener = function (
    this: AbortSignal,
    type: string,
    listener: unknown,
    options?: unknown,
  ) {
    if (type === "abort") live.get(this)?.delete(listener);
    return remove.call(
      this,
      type,
      listener as EventListener,
      options as EventListenerOptions,
    );
  };
  try {
    await body();
  } finally {
    delete proto.addEventListener;
    delete proto.removeEventListener;
  }
  return { max, signals: live.size };
}

/**
 * A call like `setTimeout(ms, x, { signal })` of node:timers/promises: one
 * abort listener on ctx.signal while it runs, removed when done. Counts the
 * calls at once in `gauge`.
 */
function listeningCall(gauge: { now: number; max: number }) {
  return async (x: number, ctx: TaskContext): Promise<number> => {
    gauge.now++;
    gauge.max = Math.max(gauge.max, gauge.now);
    const onAbort = () => {};
    ctx.signal.addEventListener("abort", onAbort);
    try {
      await delay(1 + (x % 3));
      return x;
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      gauge.now--;
    }
  };
}

const items = Array.from({ length: 128 }, (_, i) => i);

Deno.test("a stage at concurrency 16 gives no signal more than one abort listener at once", async () => {
  const gauge = { now: 0, max: 0 };
  let out: number[] = [];
  const { max } = await countingListeners(async () => {
    out = await pipeline(
      map(listeningCall(gauge), { concurrency: CONCURRENCY }),
    ).run(items).collect();
  });
  assert.deepEqual(out, items);
  assert.equal(gauge.max, CONCURRENCY); // the calls did overlap
  assert.equal(max, 1);
});

Deno.test("a stage with a timeout, retries and a rate limit at concurrency 16 gives no signal more than one abort listener at once", async () => {
  const gauge = { now: 0, max: 0 };
  let out: number[] = [];
  const user = new AbortController();
  const { max } = await countingListeners(async () => {
    out = await pipeline(
      map(listeningCall(gauge), {
        concurrency: CONCURRENCY,
        timeoutMs: 10_000,
        retry: { attempts: 2 },
        rateLimit: { limit: 1000, intervalMs: 1000 },
      }),
      map(listeningCall(gauge), { concurrency: CONCURRENCY }),
    ).run(items, { signal: user.signal }).collect();
  });
  assert.deepEqual(out, items);
  assert(gauge.max >= CONCURRENCY);
  assert.equal(max, 1);
});

Deno.test("a Pool at concurrency 16 gives no signal more than one abort listener at once (run() and map())", async () => {
  for (
    const options of [{}, { timeoutMs: 10_000 }, { retry: { attempts: 2 } }]
  ) {
    const gauge = { now: 0, max: 0 };
    const { max } = await countingListeners(async () => {
      const pool = new Pool({ concurrency: CONCURRENCY, ...options });
      const call = listeningCall(gauge);
      const ran = await Promise.all(
        items.map((x) => pool.run((ctx) => call(x, ctx))),
      );
      assert.deepEqual(ran, items);
      const mapped: number[] = [];
      for await (const x of pool.map(call, items)) mapped.push(x);
      assert.deepEqual(mapped, items);
      // Tasks with their own signal: their attempt's signal listens on the
      // slot's.
      const withOwn = await Promise.all(
        items.map((x) =>
          pool.run((ctx) => call(x, ctx), {
            signal: new AbortController().signal,
          })
        ),
      );
      assert.deepEqual(withOwn, items);
      await pool.close();
    });
    assert.equal(gauge.max, CONCURRENCY, JSON.stringify(options));
    assert.equal(max, 1, JSON.stringify(options));
  }
});

Deno.test("a plain Pool at concurrency 16 gives no signal more than one abort listener at once", async () => {
  const gauge = { now: 0, max: 0 };
  const { max } = await countingListeners(async () => {
    const pool = new Pool({ concurrency: CONCURRENCY });
    const call = listeningCall(gauge);
    await Promise.all(items.map((x) => pool.run((ctx) => call(x, ctx))));
    for await (const _ of pool.map(call, items));
    for await (const _ of pool.map(call, items, { order: "completion" }));
    await pool.close();
  });
  assert.equal(gauge.max, CONCURRENCY);
  assert.equal(max, 1);
});

Deno.test("aborting a run aborts every running call's ctx.signal with the run's reason", async () => {
  for (
    const options of [{}, { timeoutMs: 10_000 }, { retry: { attempts: 3 } }]
  ) {
    const signals: AbortSignal[] = [];
    const user = new AbortController();
    const reason = new Error("stop");
    const flow = pipeline(
      map((_: number, ctx) => {
        signals.push(ctx.signal);
        if (signals.length === CONCURRENCY) user.abort(reason);
        return abortable(ctx.signal);
      }, { concurrency: CONCURRENCY, ...options }),
    ).run(items, { signal: user.signal });
    await assert.rejects(flow.collect(), (e) => e === reason);
    assert.equal(signals.length, CONCURRENCY, JSON.stringify(options));
    assert.equal(new Set(signals).size, CONCURRENCY);
    for (const signal of signals) {
      assert(signal.aborted);
      assert.equal(signal.reason, reason);
    }
  }
});

Deno.test("flow.abort() and a failing call abort every running call's ctx.signal with the reason", async () => {
  const signals: AbortSignal[] = [];
  const started = Promise.withResolvers<void>();
  const flow = pipeline(map((_: number, ctx) => {
    signals.push(ctx.signal);
    if (signals.length === CONCURRENCY) started.resolve();
    return abortable(ctx.signal);
  }, { concurrency: CONCURRENCY })).run(items);
  const done = flow.collect().catch((e) => e);
  await started.promise;
  const reason = new Error("aborted by the consumer");
  await flow.abort(reason);
  assert.equal(await done, reason);
  for (const signal of signals) assert.equal(signal.reason, reason);

  const running: AbortSignal[] = [];
  const failure = new Error("boom");
  const error = await pipeline(map(async (x: number, ctx) => {
    if (x === CONCURRENCY - 1) {
      await delay(5);
      throw failure;
    }
    running.push(ctx.signal);
    return abortable(ctx.signal);
  }, { concurrency: CONCURRENCY })).run(items).collect().catch((e) => e);
  assert.equal(error.cause, failure);
  assert.equal(running.length, CONCURRENCY - 1);
  for (const signal of running) assert.equal(signal.reason, error);
});

Deno.test("cancelling a Pool aborts every running call's ctx.signal with the reason", async () => {
  for (
    const options of [{}, { timeoutMs: 10_000 }, { retry: { attempts: 3 } }]
  ) {
    const user = new AbortController();
    const pool = new Pool({
      concurrency: CONCURRENCY,
      signal: user.signal,
      ...options,
    });
    const signals: AbortSignal[] = [];
    const all = Promise.withResolvers<void>();
    const task = (ctx: TaskContext) => {
      signals.push(ctx.signal);
      if (signals.length === CONCURRENCY) all.resolve();
      return abortable(ctx.signal);
    };
    const runs = Array.from(
      { length: CONCURRENCY / 2 },
      () => pool.run(task).catch((e) => e),
    );
    const own = new AbortController();
    runs.push(pool.run(task, { signal: own.signal }).catch((e) => e));
    const mapped = (async () => {
      for await (
        const _ of pool.map((_: number, ctx) => task(ctx), items)
      );
    })().catch((e) => e);
    await all.promise;
    const reason = new Error("pool cancelled");
    user.abort(reason);
    for (const r of await Promise.all(runs)) assert.equal(r, reason);
    assert.equal(await mapped, reason);
    await pool.close();
    assert.equal(new Set(signals).size, CONCURRENCY);
    for (const signal of signals) {
      assert.equal(signal.reason, reason, JSON.stringify(options));
    }
  }
});

Deno.test("a stage's timeout in one slot does not abort another slot's ctx.signal", async () => {
  let other: AbortSignal | undefined;
  let otherWasAborted: boolean | undefined;
  const first = Promise.withResolvers<AbortSignal>();
  async function* source() {
    yield 0;
    await first.promise;
    await delay(50);
    yield 1;
  }
  const out = await pipeline(map(async (x: number, ctx) => {
    if (x === 0) {
      first.resolve(ctx.signal);
      return await abortable(ctx.signal); // times out
    }
    other = ctx.signal;
    await aborted(await first.promise); // slot 0's deadline passed
    otherWasAborted = ctx.signal.aborted;
    return x;
  }, { concurrency: 2, timeoutMs: 200, onError: "skip" })).run(source())
    .collect();
  assert.deepEqual(out, [1]);
  assert.equal(otherWasAborted, false);
  assert.notEqual(other, await first.promise);
});

Deno.test("a Pool task's timeout, or a map() task's abort, leaves the other slots' ctx.signal alone; the slot's next task gets a fresh signal", async () => {
  const pool = new Pool({ concurrency: 2, timeoutMs: 200 });
  const first = Promise.withResolvers<AbortSignal>();
  const timedOut = pool.run((ctx) => {
    first.resolve(ctx.signal);
    return abortable(ctx.signal);
  }).catch((e) => e);
  const firstSignal = await first.promise;
  await delay(50);
  const survived = await pool.run(async (ctx) => {
    await aborted(firstSignal);
    return ctx.signal.aborted;
  });
  assert.equal(survived, false);
  assert.equal((await timedOut).name, "TimeoutError");
  await pool.close();

  // A plain pool: a map() task aborted alone aborts its slot's signal only.
  const plain = new Pool({ concurrency: 2 });
  const inMap = Promise.withResolvers<TaskContext>();
  const gate = Promise.withResolvers<void>();
  const other = plain.run(async (ctx) => {
    await gate.promise;
    return ctx;
  });
  const stop = new AbortController();
  const reason = new Error("map stopped");
  const iteration = (async () => {
    for await (
      const _ of plain.map(
        (_: number, ctx) => {
          inMap.resolve(ctx);
          return abortable(ctx.signal);
        },
        [1],
        { signal: stop.signal },
      )
    );
  })().catch((e) => e);
  const mapCtx = await inMap.promise;
  stop.abort(reason);
  assert.equal(await iteration, reason);
  assert.equal(mapCtx.signal.reason, reason);
  gate.resolve();
  const otherCtx = await other;
  assert.equal(otherCtx.signal.aborted, false);
  assert.notEqual(otherCtx.workerId, mapCtx.workerId);
  // The aborted slot's next task runs with a fresh signal.
  const next = await plain.run((ctx) => ctx);
  const again = await plain.run((ctx) => ctx);
  const onSlot = [next, again].find((c) => c.workerId === mapCtx.workerId);
  for (const ctx of [next, again]) assert.equal(ctx.signal.aborted, false);
  if (onSlot !== undefined) assert.notEqual(onSlot.signal, mapCtx.signal);
  await plain.close();
});
