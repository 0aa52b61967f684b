import assert from "node:assert/strict";
import { RateLimiter, readRateLimit } from "../lib/_rate_limiter.ts";
import { FakeTime, prng, withTimeout } from "./_helpers.ts";

/** A fake clock: the test moves `time`. */
function fakeClock(): { time: number; now: () => number } {
  const clock = { time: 0, now: () => clock.time };
  return clock;
}

/**
 * `performance.now()` (virtual under FakeTime), remembering its last reading.
 * The limiter reads its clock once per call and once per timer tick, so `last`
 * read right after a start (synchronously, or in the first microtasks after a
 * tick) is that start's recorded time.
 */
function recordingClock(): { last: number; now: () => number } {
  const clock = { last: 0, now: () => (clock.last = performance.now()) };
  return clock;
}

/**
 * Calls `acquire()` `n` times at once; resolves with the recorded time of each
 * start, in start order. `queued` is how many had to wait.
 */
function acquireAll(
  limiter: RateLimiter,
  clock: { last: number },
  n: number,
): { queued: number; starts: Promise<number[]> } {
  const starts: number[] = [];
  const done: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const before = limiter.waiting;
    const p = limiter.acquire();
    if (limiter.waiting === before) {
      starts.push(clock.last); // started at once
      done.push(p);
    } else {
      done.push(p.then(() => void starts.push(clock.last)));
    }
  }
  return {
    queued: limiter.waiting,
    starts: withTimeout(Promise.all(done), 10_000, "acquires").then(() =>
      starts
    ),
  };
}

/**
 * Asserts that no window of `intervalMs` holds more than `limit` of `starts`:
 * starts i and i + limit are at least `intervalMs` apart (exactly: the timing
 * cases run on FakeTime, so there is no timer rounding to allow for).
 */
function assertSlidingWindow(
  starts: readonly number[],
  limit: number,
  intervalMs: number,
): void {
  const sorted = starts.toSorted((a, b) => a - b);
  for (let i = 0; i + limit < sorted.length; i++) {
    const gap = sorted[i + limit] - sorted[i];
    assert.ok(
      gap >= intervalMs,
      `starts ${i} and ${i + limit} are ${gap} ms apart (< ${intervalMs})`,
    );
  }
}

/** Wraps `signal`'s add/removeEventListener; `live` holds the listeners left. */
function trackListeners(
  signal: AbortSignal,
): { added: number; live: Set<unknown> } {
  const tracked = { added: 0, live: new Set<unknown>() };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (
    ...args: Parameters<AbortSignal["addEventListener"]>
  ) => {
    tracked.added++;
    tracked.live.add(args[1]);
    add(...args);
  };
  signal.removeEventListener = (
    ...args: Parameters<AbortSignal["removeEventListener"]>
  ) => {
    tracked.live.delete(args[1]);
    remove(...args);
  };
  return tracked;
}

Deno.test("RateLimiter tryAcquire() allows limit starts, then one more per start leaving the window", () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(3, 100, clock.now);
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.tryAcquire()),
    [true, true, true, false],
  );
  clock.time = 40;
  assert.equal(limiter.tryAcquire(), false);
  clock.time = 99.999;
  assert.equal(limiter.tryAcquire(), false);
  // (0, 100] no longer holds the starts at 0.
  clock.time = 100;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.tryAcquire()),
    [true, true, true, false],
  );
  assert.equal(limiter.waiting, 0);
});

Deno.test("RateLimiter tryAcquire() matches a brute-force sliding-window model", () => {
  const random = prng(7);
  for (const [limit, intervalMs] of [[1, 10], [3, 10], [5, 7.5]]) {
    const clock = fakeClock();
    const limiter = new RateLimiter(limit, intervalMs, clock.now);
    const starts: number[] = [];
    let allowed = 0;
    for (let i = 0; i < 5000; i++) {
      // Integer and half steps, often 0: ties and exact window edges happen.
      clock.time += Math.floor(random() * 4) / 2;
      const t = clock.time;
      const inWindow = starts.filter((s) => s > t - intervalMs).length;
      const expected = inWindow < limit;
      assert.equal(limiter.tryAcquire(), expected, `at ${t}`);
      if (expected) {
        starts.push(t);
        allowed++;
      }
    }
    assert.ok(allowed > 300, `only ${allowed} starts`);
    assertSlidingWindow(starts, limit, intervalMs);
  }
});

Deno.test("RateLimiter tryAcquire() allows no burst around a fixed-window edge", () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(5, 1000, clock.now);
  // The end of one fixed window [0, 1000)...
  clock.time = 900;
  for (let i = 0; i < 5; i++) assert.equal(limiter.tryAcquire(), true);
  // ...and the start of the next: a fixed window would allow 5 more here.
  for (const t of [1000, 1001, 1500, 1899.99]) {
    clock.time = t;
    assert.equal(limiter.tryAcquire(), false, `at ${t}`);
  }
  clock.time = 1900;
  for (let i = 0; i < 5; i++) assert.equal(limiter.tryAcquire(), true);
  assert.equal(limiter.tryAcquire(), false);
});

Deno.test("RateLimiter tryAcquire() frees one slot per start that leaves the window", () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(3, 100, clock.now);
  for (const t of [0, 30, 60]) {
    clock.time = t;
    assert.equal(limiter.tryAcquire(), true);
  }
  clock.time = 100;
  assert.deepEqual([limiter.tryAcquire(), limiter.tryAcquire()], [true, false]);
  clock.time = 129;
  assert.equal(limiter.tryAcquire(), false);
  clock.time = 130;
  assert.deepEqual([limiter.tryAcquire(), limiter.tryAcquire()], [true, false]);
});

Deno.test("RateLimiter acquire() allows at most limit starts in any sliding window", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const clock = recordingClock();
  const limiter = new RateLimiter(3, 100, clock.now);
  const { queued, starts } = acquireAll(limiter, clock, 10);
  // The first wave starts at once; the others wait for the window to slide.
  assert.equal(queued, 7);
  assert.equal(limiter.tryAcquire(), false);
  // Not a millisecond early: each wave waits for the whole window.
  for (
    const [at, waiting] of [[99, 7], [100, 4], [199, 4], [200, 1], [299, 1]]
  ) {
    await time.tickAsync(t0 + at - time.now);
    assert.equal(limiter.waiting, waiting, `at ${at} ms`);
  }
  await time.tickAsync(1);
  const times = await starts;
  assert.equal(times.length, 10);
  assert.equal(limiter.waiting, 0);
  // Each start as soon as the window lets it.
  assert.deepEqual(
    times.map((t) => t - t0),
    [0, 0, 0, 100, 100, 100, 200, 200, 200, 300],
  );
  assertSlidingWindow(times, 3, 100);
  assert.equal(time.pending, 0, "no timer left armed");
});

Deno.test("RateLimiter acquire() allows no burst around a fixed-window edge", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const clock = recordingClock();
  const limiter = new RateLimiter(3, 200, clock.now);
  const first = acquireAll(limiter, clock, 3);
  assert.equal(first.queued, 0);
  const firstTimes = await first.starts;
  // Late in the first window: a fixed-window limiter whose edge fell here
  // would start the next three at once.
  await time.tickAsync(120);
  const second = acquireAll(limiter, clock, 3);
  assert.equal(second.queued, 3);
  await time.tickAsync(79);
  assert.equal(limiter.waiting, 3, "none starts before the window slides");
  await time.tickAsync(1);
  const secondTimes = await second.starts;
  assert.deepEqual(firstTimes.map((t) => t - t0), [0, 0, 0]);
  assert.deepEqual(secondTimes.map((t) => t - t0), [200, 200, 200]);
  for (let i = 0; i < 3; i++) {
    assert.equal(secondTimes[i] - firstTimes[i], 200);
  }
  assertSlidingWindow([...firstTimes, ...secondTimes], 3, 200);
});

Deno.test("RateLimiter acquire() serves waiters first in, first out", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const limiter = new RateLimiter(1, 10);
  assert.equal(limiter.tryAcquire(), true);
  const order: number[] = [];
  const at: number[] = [];
  const done = [0, 1, 2, 3, 4].map((i) =>
    limiter.acquire().then(() => {
      order.push(i);
      at.push(time.now - t0);
    })
  );
  assert.equal(limiter.waiting, 5);
  await time.tickAsync(50);
  await Promise.all(done);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  // One per window, each as soon as the previous start leaves it.
  assert.deepEqual(at, [10, 20, 30, 40, 50]);
  assert.equal(time.pending, 0);
});

Deno.test("RateLimiter tryAcquire() does not jump ahead of waiters", async () => {
  // The limiter reads `clock`; its timer runs on FakeTime.
  using time = new FakeTime();
  const clock = fakeClock();
  const limiter = new RateLimiter(1, 50, clock.now);
  assert.equal(limiter.tryAcquire(), true);
  let started = false;
  const waiter = limiter.acquire().then(() => void (started = true));
  assert.equal(limiter.waiting, 1);
  clock.time = 50; // allowed now, but the waiter came first
  assert.equal(limiter.tryAcquire(), false);
  await time.tickAsync(49);
  assert.equal(started, false);
  assert.equal(limiter.tryAcquire(), false);
  await time.tickAsync(1); // the timer starts it at 50
  assert.equal(started, true);
  await waiter;
  assert.equal(limiter.waiting, 0);
  assert.equal(limiter.tryAcquire(), false); // the waiter took the slot
  clock.time = 100;
  assert.equal(limiter.tryAcquire(), true);
});

Deno.test("RateLimiter acquire() abort removes the waiter and not the others", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const limiter = new RateLimiter(1, 30);
  assert.equal(limiter.tryAcquire(), true);
  const controllers = [0, 1, 2].map(() => new AbortController());
  const listeners = controllers.map((c) => trackListeners(c.signal));
  const order: number[] = [];
  const at: number[] = [];
  const waiters = controllers.map((c, i) =>
    limiter.acquire(c.signal).then(() => {
      order.push(i);
      at.push(time.now - t0);
    })
  );
  assert.equal(limiter.waiting, 3);
  const reason = new Error("stop 1");
  controllers[1].abort(reason);
  assert.equal(limiter.waiting, 2);
  await assert.rejects(waiters[1], (e) => e === reason);
  await time.tickAsync(60);
  await Promise.all([waiters[0], waiters[2]]);
  assert.deepEqual(order, [0, 2]);
  // The aborted waiter took no turn: waiter 2 starts in the very next window.
  assert.deepEqual(at, [30, 60]);
  assert.equal(time.pending, 0);
  // One listener each, none left: removed on start and on abort alike.
  for (const tracked of listeners) {
    assert.equal(tracked.added, 1);
    assert.equal(tracked.live.size, 0);
  }
  // Aborting after the start changes nothing.
  controllers[0].abort();
  assert.equal(limiter.waiting, 0);
});

Deno.test("RateLimiter acquire() abort of the last waiter clears the timer", async () => {
  const limiter = new RateLimiter(1, 60_000);
  assert.equal(limiter.tryAcquire(), true);
  const controller = new AbortController();
  const waiter = limiter.acquire(controller.signal);
  controller.abort();
  await assert.rejects(waiter, (e) => e === controller.signal.reason);
  assert.equal(limiter.waiting, 0);
  // The sanitizer fails the test if the 60 s timer is still armed.
});

Deno.test("RateLimiter acquire() rejects at once with an already-aborted signal", async () => {
  const limiter = new RateLimiter(1, 60_000);
  const reason = new Error("aborted before");
  const signal = AbortSignal.abort(reason);
  const tracked = trackListeners(signal);
  await assert.rejects(limiter.acquire(signal), (e) => e === reason);
  assert.equal(tracked.added, 0);
  assert.equal(limiter.waiting, 0);
  // No start was recorded.
  assert.equal(limiter.tryAcquire(), true);
});

Deno.test("RateLimiter close() rejects every waiter and leaves no timer", async () => {
  const limiter = new RateLimiter(2, 60_000);
  assert.equal(limiter.tryAcquire(), true);
  assert.equal(limiter.tryAcquire(), true);
  const controller = new AbortController();
  const tracked = trackListeners(controller.signal);
  const waiters = [
    limiter.acquire(),
    limiter.acquire(controller.signal),
    limiter.acquire(),
  ];
  assert.equal(limiter.waiting, 3);
  const reason = new Error("run stopped");
  limiter.close(reason);
  assert.equal(limiter.waiting, 0);
  for (const waiter of waiters) {
    await assert.rejects(waiter, (e) => e === reason);
  }
  assert.equal(tracked.live.size, 0);
  limiter.close(new Error("again")); // no effect
});

Deno.test("RateLimiter acquire() after close() rejects with its reason", async () => {
  const limiter = new RateLimiter(5, 100);
  const reason = new Error("closed");
  limiter.close(reason);
  await assert.rejects(limiter.acquire(), (e) => e === reason);
  await assert.rejects(
    limiter.acquire(new AbortController().signal),
    (e) => e === reason,
  );
  assert.equal(limiter.tryAcquire(), false);
  assert.equal(limiter.waiting, 0);
});

Deno.test("readRateLimit() returns undefined or a copy of a valid option", () => {
  assert.equal(readRateLimit(undefined), undefined);
  const option = { limit: 2, intervalMs: 0.5 };
  const read = readRateLimit(option);
  assert.deepEqual(read, option);
  assert.notEqual(read, option);
});

Deno.test("readRateLimit() names the option and the value in its errors", () => {
  const cases: [unknown, ErrorConstructor, string][] = [
    ["1/s", TypeError, `'rateLimit' must be an object: current value is "1/s"`],
    [null, TypeError, "'rateLimit' must be an object: current value is null"],
    [5, TypeError, "'rateLimit' must be an object: current value is 5"],
    [
      { limit: 0, intervalMs: 100 },
      RangeError,
      "'rateLimit.limit' must be a positive integer: current value is 0",
    ],
    [
      { limit: 1.5, intervalMs: 100 },
      RangeError,
      "'rateLimit.limit' must be a positive integer: current value is 1.5",
    ],
    [
      { limit: Infinity, intervalMs: 100 },
      RangeError,
      "'rateLimit.limit' must be a positive integer: current value is Infinity",
    ],
    [
      { limit: "2", intervalMs: 100 },
      TypeError,
      `'rateLimit.limit' must be a positive integer: current value is "2"`,
    ],
    [
      { intervalMs: 100 },
      TypeError,
      "'rateLimit.limit' must be a positive integer: current value is undefined",
    ],
    [
      { limit: 1, intervalMs: 0 },
      RangeError,
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is 0",
    ],
    [
      { limit: 1, intervalMs: -5 },
      RangeError,
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is -5",
    ],
    [
      { limit: 1, intervalMs: NaN },
      RangeError,
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is NaN",
    ],
    [
      { limit: 1, intervalMs: Infinity },
      RangeError,
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is Infinity",
    ],
    [
      { limit: 1, intervalMs: "1s" },
      TypeError,
      `'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is "1s"`,
    ],
    [
      { limit: 1 },
      TypeError,
      "'rateLimit.intervalMs' must be a number of ms > 0 and <= 2147483647: current value is undefined",
    ],
  ];
  for (const [value, type, message] of cases) {
    assert.throws(() => readRateLimit(value), { name: type.name, message });
  }
});
