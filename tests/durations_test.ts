// Durations longer than a timer can wait (2³¹−1 ms) are refused at the call
// site with a RangeError naming the option, never shortened to ~1 ms by
// setTimeout; where "no limit" makes sense, Infinity means none.
import assert from "node:assert/strict";
import { batch, Batcher, filter, map, pipeline, Pool, toSSE } from "../mod.ts";
import { sleep } from "./_helpers.ts";

const TOO_LONG = 2 ** 31;
const LONGEST = 2 ** 31 - 1;

Deno.test("durations above 2^31-1 ms are refused with a RangeError naming the option", () => {
  const cases: [string, () => unknown][] = [
    ["timeoutMs", () => map((x) => x, { timeoutMs: TOO_LONG })],
    ["timeoutMs", () => filter(() => true, { timeoutMs: TOO_LONG })],
    ["timeoutMs", () => new Pool({ timeoutMs: TOO_LONG })],
    ["maxWaitMs", () => batch({ maxSize: 2, maxWaitMs: TOO_LONG })],
    [
      "maxWaitMs",
      () =>
        new Batcher((xs: number[]) => xs, { maxSize: 2, maxWaitMs: TOO_LONG }),
    ],
    [
      "retry.delayMs",
      () => map((x) => x, { retry: { delayMs: TOO_LONG } }),
    ],
    [
      "retry.maxDelayMs",
      () => new Pool({ retry: { maxDelayMs: TOO_LONG } }),
    ],
    [
      "rateLimit.intervalMs",
      () => map((x) => x, { rateLimit: { limit: 1, intervalMs: TOO_LONG } }),
    ],
    [
      "progressIntervalMs",
      () => pipeline(map((x) => x)).run([1], { progressIntervalMs: TOO_LONG }),
    ],
    ["heartbeatMs", () => toSSE([], { heartbeatMs: TOO_LONG })],
  ];
  for (const [name, call] of cases) {
    assert.throws(call, (e: unknown) => {
      assert(e instanceof RangeError, `${name}: ${e}`);
      assert.match(e.message, new RegExp(`^'${name.replace(".", "\\.")}' `));
      assert.match(e.message, /<= 2147483647/);
      assert.match(e.message, /current value is 2147483648$/);
      return true;
    });
  }
  // The longest delay a timer honours is accepted.
  map((x) => x, { timeoutMs: LONGEST });
  batch({ maxSize: 2, maxWaitMs: LONGEST });
  new Batcher((xs: number[]) => xs, { maxSize: 2, maxWaitMs: LONGEST });
});

Deno.test("map() timeoutMs: Infinity is no deadline, and 2^31-1 does not fire early", async () => {
  for (const timeoutMs of [Infinity, LONGEST]) {
    const flow = pipeline(map(async (x: number, ctx) => {
      await sleep(20, ctx.signal);
      assert.equal(ctx.signal.aborted, false);
      return x * 2;
    }, { timeoutMs })).run([1, 2]);
    assert.deepEqual(await flow.collect(), [2, 4], `timeoutMs ${timeoutMs}`);
  }
});

Deno.test("Pool timeoutMs: Infinity is no deadline", async () => {
  const pool = new Pool({ timeoutMs: Infinity });
  try {
    assert.equal(await pool.submit(() => sleep(20).then(() => 7)), 7);
  } finally {
    await pool.close();
  }
});

Deno.test("batch() maxWaitMs: Infinity flushes only when full or at the end", async () => {
  const flow = pipeline(batch({ maxSize: 3, maxWaitMs: Infinity })).run(
    (async function* () {
      yield 1;
      await sleep(20);
      yield 2;
    })(),
  );
  assert.deepEqual(await flow.collect(), [[1, 2]]);
});

Deno.test("retry.maxDelayMs: Infinity leaves the backoff uncapped but never past a timer's limit", async () => {
  let calls = 0;
  const flow = pipeline(map(() => {
    if (++calls === 1) throw new Error("once");
    return "ok";
  }, {
    retry: { attempts: 2, delayMs: 10, maxDelayMs: Infinity, jitter: false },
  })).run([1]);
  assert.deepEqual(await flow.collect(), ["ok"]);
  assert.equal(calls, 2);
});
