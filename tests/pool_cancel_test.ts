// Pool cancels and map() stops, pinned after fault injection found them
// wrong:
// - D2: cancelling a pool while map() tasks wait in the queue and back off
//   settled some twice: close() resolved with a task running and onIdle()
//   never resolved. Each task settles exactly once.
// - A map over an async input submitted the item of a read pending at
//   close() (after close() resolved).
// - A map whose signal aborted still read and started items when a running
//   task then finished.
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { deferred, sleep, until, withTimeout } from "./_helpers.ts";

/**
 * A map over `items` whose item 0 fails its first attempt (after `fail0`
 * opens) and whose other items wait for `gate` (ignoring their signal);
 * `running` counts the calls in progress.
 */
function flakyMap(pool: Pool, items: number[]) {
  const fail0 = deferred();
  const gate = deferred();
  const state = { running: 0, fail0, gate, error: undefined as unknown };
  let first = true;
  const it = pool.map(async (x: number) => {
    state.running++;
    try {
      if (x === 0 && first) {
        first = false;
        await fail0.promise;
        throw new Error("flaky");
      }
      await gate.promise;
      return x;
    } finally {
      state.running--;
    }
  }, items);
  const consumed = (async () => {
    for await (const _ of it) { /* read all */ }
  })().catch((error) => (state.error = error));
  return { state, consumed };
}

/** Whether `promise` resolves within 5 ms. */
async function resolvesSoon(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true));
  await sleep(5);
  return done;
}

Deno.test("Pool.close({ cancelPending: true }) while a map task backs off and one runs: resolves only after the running one returned, then onIdle() resolves", async () => {
  const pool = new Pool({
    concurrency: 1,
    retry: { attempts: 2, delayMs: 50, jitter: false },
  });
  const { state, consumed } = flakyMap(pool, [0, 1, 2]);
  state.fail0.resolve();
  // Item 2 waits in the map, not in the pool: a map has at most
  // concurrency + 1 tasks in the pool, a backing-off one included.
  await until(
    () => pool.active === 1 && pool.pending === 1 && state.running === 1,
    "item 0 backing off, item 1 running",
  );
  const closing = pool.close({ cancelPending: true });
  assert.equal(pool.active + pool.pending, 1, "only item 1 is unsettled");
  assert.equal(await resolvesSoon(closing), false, "close() waits for item 1");
  state.gate.resolve();
  await withTimeout(closing, 2000, "close() resolves");
  assert.equal(state.running, 0, "nothing runs once close() resolved");
  await withTimeout(pool.onIdle(), 2000, "onIdle() resolves");
  await consumed;
  assert.equal((state.error as Error).name, "AbortError");
  assert.equal(pool.active + pool.pending, 0);
});

Deno.test("Pool.close({ cancelPending: true }) on a paused pool with a map task backing off and one queued: resolves only after the running task returned, then onIdle() resolves", async () => {
  const pool = new Pool({
    concurrency: 2,
    retry: { attempts: 2, delayMs: 50, jitter: false },
  });
  const blocker = deferred();
  let blocking = true;
  const other = pool.submit(async () => {
    await blocker.promise;
    blocking = false;
    return "other";
  });
  const { state, consumed } = flakyMap(pool, [0, 1]);
  await until(
    () => pool.active === 2 && pool.pending === 1,
    "the other task and item 0 running, item 1 queued",
  );
  pool.pause();
  state.fail0.resolve();
  await until(
    () => pool.active === 1 && pool.pending === 2,
    "item 0 backing off, item 1 queued (paused)",
  );
  const closing = pool.close({ cancelPending: true });
  assert.equal(pool.active + pool.pending, 1, "only the other task");
  assert.equal(await resolvesSoon(closing), false, "close() waits for it");
  blocker.resolve();
  await withTimeout(closing, 2000, "close() resolves");
  assert.equal(blocking, false, "nothing runs once close() resolved");
  assert.equal(await other, "other");
  await withTimeout(pool.onIdle(), 2000, "onIdle() resolves");
  await consumed;
  assert.equal((state.error as Error).name, "AbortError");
  assert.equal(state.running, 0);
});

Deno.test("Pool with a signal aborted while a map task backs off and one runs: close() resolves only after the running one returned, then onIdle() resolves", async () => {
  const controller = new AbortController();
  const pool = new Pool({
    concurrency: 1,
    retry: { attempts: 2, delayMs: 50, jitter: false },
    signal: controller.signal,
  });
  const { state, consumed } = flakyMap(pool, [0, 1, 2]);
  state.fail0.resolve();
  // Item 2 waits in the map, not in the pool: a map has at most
  // concurrency + 1 tasks in the pool, a backing-off one included.
  await until(
    () => pool.active === 1 && pool.pending === 1 && state.running === 1,
    "item 0 backing off, item 1 running",
  );
  const reason = new Error("shutting down");
  controller.abort(reason);
  assert.equal(pool.active + pool.pending, 1, "only item 1 is unsettled");
  const closing = pool.close();
  assert.equal(await resolvesSoon(closing), false, "close() waits for item 1");
  state.gate.resolve();
  await withTimeout(closing, 2000, "close() resolves");
  assert.equal(state.running, 0, "nothing runs once close() resolved");
  await withTimeout(pool.onIdle(), 2000, "onIdle() resolves");
  await consumed;
  assert.equal(state.error, reason);
});

Deno.test("Pool.map() over an async input: an item whose read was pending at close() never runs, and the map rejects with the pool's TypeError", async () => {
  for (const cancelPending of [false, true]) {
    const pool = new Pool({ concurrency: 1 });
    const called: number[] = [];
    let closedInput = false;
    const items = (async function* () {
      try {
        for (let i = 0; i < 3; i++) {
          await null; // the read is pending when close() comes
          yield i;
        }
      } finally {
        closedInput = true;
      }
    })();
    const it = pool.map((x: number) => called.push(x), items);
    const consumed = it.next();
    let closed = false;
    const closing = pool.close({ cancelPending }).then(() => (closed = true));
    await assert.rejects(consumed, TypeError);
    await closing;
    assert.equal(closed, true);
    assert.deepEqual(called, [], `cancelPending: ${cancelPending}`);
    assert.equal(closedInput, true);
    assert.equal(pool.active + pool.pending, 0);
    await withTimeout(pool.onIdle(), 2000, "onIdle() resolves");
  }
});

Deno.test("Pool.map() with a signal: no task of the map starts after the signal aborted, even when a running one then finishes", async () => {
  const pool = new Pool({ concurrency: 3 });
  const controller = new AbortController();
  const gates = [deferred(), deferred(), deferred(), deferred(), deferred()];
  const started: number[] = [];
  const it = pool.map(
    async (x: number) => {
      started.push(x);
      if (x > 0) await gates[x].promise; // ignores its signal
      return x;
    },
    [0, 1, 2, 3, 4],
    { signal: controller.signal, bufferSize: 2 },
  );
  assert.deepEqual(await it.next(), { value: 0, done: false });
  assert.deepEqual(started, [0, 1, 2]);
  gates[1].resolve(); // item 1 done while the consumer holds item 0
  await sleep(5);
  // Taking item 1 makes room for item 3, read and started at once (the run
  // reads as soon as a result is taken, not at the following next()).
  assert.deepEqual(await it.next(), { value: 1, done: false });
  assert.deepEqual(started, [0, 1, 2, 3]);
  const reason = new Error("user left");
  controller.abort(reason); // the consumer is not waiting in next()
  gates[2].resolve(); // item 2 finishes: the map must not start item 4
  await sleep(5);
  assert.deepEqual(started, [0, 1, 2, 3]);
  gates[3].resolve();
  await assert.rejects(it.next(), (e) => e === reason);
  await withTimeout(pool.close(), 2000, "close() resolves");
  assert.deepEqual(started, [0, 1, 2, 3]);
});
