// AdaptiveLimit driven by a discrete-event simulation on a virtual clock: a
// service of hidden capacity C (calls above it get a 429 after 2 ms, latency
// grows steeply as the calls in flight near C) and a client that keeps
// `limit.limit` calls running. No timers, no sleeps; a seeded PRNG.
import assert from "node:assert/strict";
import {
  AdaptiveLimit,
  isOverload,
  readConcurrency,
} from "../lib/_adaptive_limit.ts";

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The service's capacity until `untilMs` (virtual). */
interface Phase {
  untilMs: number;
  capacity: number;
}

interface SimOptions {
  /** Most calls the client has to run at once (its own demand). */
  demand?: number;
  /** No 429s: calls above capacity share it (latency × n/C). */
  queueing?: boolean;
  seed?: number;
  /** Called after every sample with the virtual time. */
  check?: (t: number, limit: AdaptiveLimit) => void;
}

interface SimResult {
  ok: number;
  overloaded: number;
  /** The limit after each sample, as [virtual time, limit]. */
  trace: [number, number][];
}

const BASE_MS = 20;
const REJECT_MS = 2;

/** Runs `limit` against the phases; the clock is virtual. */
function simulate(
  phases: Phase[],
  make: (now: () => number) => AdaptiveLimit,
  { demand = Infinity, queueing = false, seed = 1, check }: SimOptions = {},
): SimResult {
  const random = mulberry32(seed);
  let t = 0;
  const limit = make(() => t);
  const calls: { start: number; end: number; ok: boolean }[] = [];
  const result: SimResult = { ok: 0, overloaded: 0, trace: [] };
  let busy = 0;
  let phase = 0;
  const end = phases[phases.length - 1].untilMs;
  for (;;) {
    while (calls.length < Math.min(limit.limit, demand)) {
      const capacity = phases[phase].capacity;
      if (!queueing && busy >= capacity) {
        calls.push({ start: t, end: t + REJECT_MS, ok: false });
        continue;
      }
      const x = ++busy / capacity;
      const load = queueing ? Math.max(1, x) : 1 + 0.5 * x ** 4;
      const ms = BASE_MS * load * (0.9 + 0.2 * random());
      calls.push({ start: t, end: t + ms, ok: true });
    }
    let k = 0;
    for (let i = 1; i < calls.length; i++) {
      if (calls[i].end < calls[k].end) k = i;
    }
    const call = calls[k];
    calls[k] = calls[calls.length - 1];
    calls.pop();
    t = call.end;
    if (t >= end) return result;
    while (t >= phases[phase].untilMs) phase++;
    if (call.ok) {
      busy--;
      result.ok++;
    } else result.overloaded++;
    limit.sample(call.end - call.start, !call.ok, calls.length);
    result.trace.push([t, limit.limit]);
    check?.(t, limit);
  }
}

const fromMin = (now: () => number) =>
  new AdaptiveLimit({ min: 1, max: 64, initial: 1 }, now);

/** The time-weighted mean limit over [from, to). */
function meanLimit(trace: [number, number][], from: number, to: number) {
  let sum = 0;
  let last = from;
  let value = trace.findLast(([t]) => t < from)?.[1] ?? trace[0][1];
  for (const [t, limit] of trace) {
    if (t < from) continue;
    if (t >= to) break;
    sum += value * (t - last);
    last = t;
    value = limit;
  }
  return (sum + value * (to - last)) / (to - from);
}

Deno.test("AdaptiveLimit converges near the hidden capacity from initial = min", () => {
  for (const capacity of [8, 16, 32]) {
    for (const seed of [1, 2, 3]) {
      const { trace } = simulate(
        [{ untilMs: 10_000, capacity }],
        fromMin,
        { seed },
      );
      const mean = meanLimit(trace, 5_000, 10_000);
      assert.ok(
        mean >= 0.7 * capacity && mean <= capacity + 1,
        `capacity ${capacity}, seed ${seed}: mean limit ${mean}`,
      );
      const high = Math.max(
        ...trace.filter(([t]) => t >= 5_000).map(([, l]) => l),
      );
      assert.ok(high <= capacity + 2, `capacity ${capacity}: peak ${high}`);
    }
  }
});

Deno.test("AdaptiveLimit keeps overload errors under 5 % of calls", () => {
  for (const capacity of [4, 8, 16, 32]) {
    const { ok, overloaded } = simulate(
      [{ untilMs: 10_000, capacity }],
      fromMin,
    );
    const share = overloaded / (ok + overloaded);
    assert.ok(share < 0.05, `capacity ${capacity}: ${share}`);
  }
});

Deno.test("AdaptiveLimit drops under the new capacity within 0.5 s after it halves", () => {
  const { trace } = simulate(
    [{ untilMs: 5_000, capacity: 16 }, { untilMs: 10_000, capacity: 8 }],
    fromMin,
  );
  const after = trace.filter(([t]) => t >= 5_500);
  assert.ok(after.every(([, l]) => l <= 9), "limit above 9 after 0.5 s");
  const mean = meanLimit(trace, 6_000, 10_000);
  assert.ok(mean >= 6, `mean limit ${mean}`);
});

Deno.test("AdaptiveLimit rises to the new capacity within 1 s after it doubles", () => {
  const { trace } = simulate(
    [{ untilMs: 5_000, capacity: 16 }, { untilMs: 10_000, capacity: 32 }],
    fromMin,
  );
  const at = trace.find(([t, l]) => t >= 5_000 && l >= 0.75 * 32);
  assert.ok(at !== undefined && at[0] < 6_000, `reached 24 at ${at?.[0]}`);
  const mean = meanLimit(trace, 7_000, 10_000);
  assert.ok(mean >= 0.7 * 32 && mean <= 33, `mean limit ${mean}`);
});

Deno.test("AdaptiveLimit keeps the limit near capacity from latency alone when the service queues instead of refusing", () => {
  const { trace, overloaded } = simulate(
    [{ untilMs: 10_000, capacity: 16 }],
    fromMin,
    { queueing: true },
  );
  assert.equal(overloaded, 0);
  const mean = meanLimit(trace, 5_000, 10_000);
  assert.ok(mean >= 12 && mean <= 28, `mean limit ${mean}`);
});

Deno.test("AdaptiveLimit never leaves [min, max] and stays an integer", () => {
  const options = { min: 3, max: 10, initial: 5 };
  for (const capacity of [1, 6, 40]) {
    simulate([{ untilMs: 5_000, capacity }], (now) => {
      return new AdaptiveLimit(options, now);
    }, {
      check(_, { limit }) {
        assert.ok(Number.isInteger(limit) && limit >= 3 && limit <= 10);
      },
    });
  }
  const pinned = simulate(
    [{ untilMs: 5_000, capacity: 40 }],
    (now) => new AdaptiveLimit(options, now),
  );
  assert.equal(pinned.trace.at(-1)?.[1], 10);
});

Deno.test("AdaptiveLimit does not grow a limit the caller does not use", () => {
  let limit!: AdaptiveLimit;
  simulate([{ untilMs: 10_000, capacity: 64 }], (now) => {
    return limit = new AdaptiveLimit({ min: 1, max: 64, initial: 4 }, now);
  }, { demand: 3 });
  assert.equal(limit.limit, 4);
  assert.equal(limit.history.length, 1);
});

Deno.test("AdaptiveLimit.sample() cuts once for a burst of overloads from calls started before the cut", () => {
  let t = 1_000;
  const limit = new AdaptiveLimit({ min: 1, max: 64, initial: 20 }, () => t);
  assert.equal(limit.sample(2, true, 19), true);
  assert.equal(limit.limit, 16);
  for (let i = 0; i < 10; i++) {
    t += 0.1;
    assert.equal(limit.sample(2, true, 18 - i), false);
  }
  assert.equal(limit.limit, 16);
  // A call started after the cut still overloads: that is news, cut again.
  t += 5;
  assert.equal(limit.sample(2, true, 10), true);
  assert.equal(limit.limit, 12);
});

Deno.test("AdaptiveLimit.sample() returns true exactly when the limit changed, and history records each change", () => {
  let changes = 0;
  let before = 1;
  const { trace } = simulate(
    [{ untilMs: 3_000, capacity: 16 }],
    (now) => new AdaptiveLimit({ min: 1, max: 64, initial: 1 }, now),
    {
      check(_, limit) {
        if (limit.limit !== before) changes++;
        before = limit.limit;
      },
    },
  );
  assert.ok(changes > 5);
  assert.equal(trace.length > changes, true);
  const limit = new AdaptiveLimit({ min: 2, max: 8, initial: 2 });
  assert.deepEqual(limit.history.map((c) => c.limit), [2]);
});

Deno.test("AdaptiveLimit.history keeps the last 64 changes, oldest first", () => {
  let t = 0;
  const limit = new AdaptiveLimit({ min: 1, max: 64, initial: 64 }, () => t);
  const seen: number[] = [limit.limit];
  for (let i = 0; i < 300; i++) {
    t += 10;
    // Every overload comes from a call started after the last cut.
    if (limit.sample(1, true, 0)) seen.push(limit.limit);
    if (limit.limit === 1) {
      // Regrow by slow start: used windows of fast, flat latencies.
      for (let j = 0; j < 40; j++) {
        t += 10;
        if (limit.sample(10, false, limit.limit - 1)) seen.push(limit.limit);
      }
    }
  }
  assert.ok(seen.length > 64, `only ${seen.length} changes`);
  assert.equal(limit.history.length, 64);
  assert.deepEqual(limit.history.map((c) => c.limit), seen.slice(-64));
  assert.ok(
    limit.history.every((c, i, h) => i === 0 || c.at >= h[i - 1].at),
  );
});

Deno.test("readConcurrency() accepts a positive integer, Infinity or { adaptive } (initial defaults to min)", () => {
  assert.equal(readConcurrency(8), 8);
  assert.equal(readConcurrency(Infinity), Infinity);
  assert.deepEqual(readConcurrency({ adaptive: { min: 2, max: 9 } }), {
    min: 2,
    max: 9,
    initial: 2,
  });
  assert.deepEqual(
    readConcurrency({ adaptive: { min: 2, max: 9, initial: 9 } }),
    { min: 2, max: 9, initial: 9 },
  );
});

Deno.test("readConcurrency() names the bad option and its value", () => {
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [0, RangeError, /^'concurrency' must be .*: current value is 0$/],
    ["4", TypeError, /^'concurrency' must be .*: current value is "4"$/],
    [null, TypeError, /^'concurrency' must be .*: current value is null$/],
    [{}, TypeError, /^'concurrency' .*without 'adaptive'$/],
    [{ adaptive: 3 }, TypeError, /^'concurrency' .*without 'adaptive'$/],
    [
      { adaptive: { min: 0, max: 4 } },
      RangeError,
      /^'concurrency\.adaptive\.min' must be a positive integer: current value is 0$/,
    ],
    [
      { adaptive: { min: "1", max: 4 } },
      TypeError,
      /^'concurrency\.adaptive\.min' .*: current value is "1"$/,
    ],
    [
      { adaptive: { min: 1.5, max: 4 } },
      RangeError,
      /^'concurrency\.adaptive\.min' .*: current value is 1.5$/,
    ],
    [
      { adaptive: { min: 4, max: 2 } },
      RangeError,
      /^'concurrency\.adaptive\.max' must be an integer >= 4: current value is 2$/,
    ],
    [
      { adaptive: { min: 1 } },
      TypeError,
      /^'concurrency\.adaptive\.max' .*: current value is undefined$/,
    ],
    [
      { adaptive: { min: 1, max: Infinity } },
      RangeError,
      /^'concurrency\.adaptive\.max' .*: current value is Infinity$/,
    ],
    [
      { adaptive: { min: 2, max: 8, initial: 1 } },
      RangeError,
      /^'concurrency\.adaptive\.initial' must be an integer >= 2: current value is 1$/,
    ],
    [
      { adaptive: { min: 2, max: 8, initial: 9 } },
      RangeError,
      /^'concurrency\.adaptive\.initial' must be <= max \(8\): current value is 9$/,
    ],
  ];
  for (const [value, type, message] of bad) {
    assert.throws(() => readConcurrency(value), (e: unknown) => {
      assert.ok(e instanceof type, `${Deno.inspect(value)}: ${e}`);
      assert.match((e as Error).message, message);
      return true;
    });
  }
});

Deno.test("isOverload() is true for HTTP 429 and 503 however the error carries them", () => {
  assert.equal(isOverload({ status: 429 }), true);
  assert.equal(isOverload({ statusCode: 503 }), true);
  assert.equal(isOverload({ response: { status: 429 } }), true);
  assert.equal(isOverload(new Response(null, { status: 429 })), true);
  assert.equal(isOverload(new Response(null, { status: 503 })), true);
  const error = Object.assign(new Error("busy"), { status: 503 });
  assert.equal(isOverload(error), true);
});

Deno.test("isOverload() is false for other statuses, plain errors and non-objects", () => {
  assert.equal(isOverload({ status: 500 }), false);
  assert.equal(isOverload({ statusCode: 404 }), false);
  assert.equal(isOverload({ response: { status: 502 } }), false);
  assert.equal(isOverload(new Response(null, { status: 500 })), false);
  assert.equal(isOverload(new Error("429")), false);
  assert.equal(isOverload({ status: "429" }), false);
  for (const value of [429, "429", null, undefined, true]) {
    assert.equal(isOverload(value), false);
  }
});
