// Tests of the FakeTime helper (tests/_helpers.ts): the virtual clock that the
// timing-sensitive tests run on.
import assert from "node:assert/strict";
import { FakeTime, sleep } from "./_helpers.ts";

Deno.test("FakeTime replaces the six globals and restores them on dispose", () => {
  const before = [
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    performance.now,
    Date.now,
  ];
  const ownNow = Object.getOwnPropertyDescriptor(performance, "now");
  {
    using time = new FakeTime();
    assert.notEqual(setTimeout, before[0]);
    assert.notEqual(clearTimeout, before[1]);
    assert.notEqual(setInterval, before[2]);
    assert.notEqual(clearInterval, before[3]);
    assert.notEqual(performance.now, before[4]);
    assert.notEqual(Date.now, before[5]);
    assert.equal(performance.now(), time.now);
  }
  assert.deepEqual(
    [
      setTimeout,
      clearTimeout,
      setInterval,
      clearInterval,
      performance.now,
      Date.now,
    ],
    before,
  );
  assert.deepEqual(Object.getOwnPropertyDescriptor(performance, "now"), ownNow);
});

Deno.test("FakeTime restores the globals when the test throws inside its scope", () => {
  const real = setTimeout;
  assert.throws(() => {
    using _time = new FakeTime();
    assert.notEqual(setTimeout, real);
    throw new Error("boom");
  }, { message: "boom" });
  assert.equal(setTimeout, real);
});

Deno.test("FakeTime the clock starts at the real clocks and moves only when ticked", async () => {
  const realPerf = performance.now();
  const realDate = Date.now();
  using time = new FakeTime();
  const t0 = performance.now();
  const d0 = Date.now();
  assert(t0 >= realPerf && t0 - realPerf < 1000);
  assert(d0 >= realDate && d0 - realDate < 1000);
  await time.tickAsync(0);
  assert.equal(performance.now(), t0);
  await time.tickAsync(250);
  assert.equal(performance.now(), t0 + 250);
  assert.equal(time.now, t0 + 250);
  assert.equal(Date.now() - d0, 250);
});

Deno.test("FakeTime fires timers in time order, ties in creation order, each at its own time", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const fired: [string, number][] = [];
  const at = (name: string) => () => fired.push([name, time.now - t0]);
  setTimeout(at("c30"), 30);
  setTimeout(at("a10"), 10);
  setTimeout(at("b10"), 10);
  setTimeout(at("z0"), 0);
  await time.tickAsync(9);
  assert.deepEqual(fired, [["z0", 0]]);
  await time.tickAsync(100);
  assert.deepEqual(fired, [["z0", 0], ["a10", 10], ["b10", 10], ["c30", 30]]);
  assert.equal(time.now - t0, 109);
});

Deno.test("FakeTime passes a timer's extra arguments to its handler", async () => {
  using time = new FakeTime();
  const got: unknown[][] = [];
  setTimeout((...args: unknown[]) => got.push(args), 5, "a", 2);
  const id = setInterval((x: unknown) => got.push([x]), 10, "i");
  await time.tickAsync(20);
  clearInterval(id);
  assert.deepEqual(got, [["a", 2], ["i"], ["i"]]);
});

Deno.test("FakeTime clearTimeout stops a timer, also one cleared by an earlier timer at the same time", async () => {
  using time = new FakeTime();
  const fired: string[] = [];
  const a = setTimeout(() => fired.push("a"), 10);
  const later: ReturnType<typeof setTimeout>[] = [];
  setTimeout(() => {
    fired.push("first");
    clearTimeout(later[0]);
  }, 20);
  later.push(setTimeout(() => fired.push("b"), 20));
  assert.equal(time.pending, 3);
  clearTimeout(a);
  clearTimeout(undefined);
  assert.equal(time.pending, 2);
  assert.equal(time.created, 3);
  assert.equal(time.peakPending, 3);
  await time.tickAsync(50);
  assert.deepEqual(fired, ["first"]);
  assert.equal(time.pending, 0);
});

Deno.test("FakeTime intervals repeat every period until cleared", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const at: number[] = [];
  const id = setInterval(() => at.push(time.now - t0), 30);
  await time.tickAsync(100);
  assert.deepEqual(at, [30, 60, 90]);
  clearInterval(id);
  await time.tickAsync(100);
  assert.deepEqual(at, [30, 60, 90]);
  assert.equal(time.pending, 0);
});

Deno.test("FakeTime a timer set by a timer fires in the same tick when due by its end", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const at: [string, number][] = [];
  setTimeout(() => {
    at.push(["outer", time.now - t0]);
    setTimeout(() => at.push(["inner", time.now - t0]), 15);
    setTimeout(() => at.push(["late", time.now - t0]), 100);
  }, 10);
  await time.tickAsync(30);
  assert.deepEqual(at, [["outer", 10], ["inner", 25]]);
  await time.tickAsync(80);
  assert.deepEqual(at, [["outer", 10], ["inner", 25], ["late", 110]]);
});

Deno.test("FakeTime promise chains run between timers: a sleep loop sees each step at its own time", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const steps: number[] = [];
  const loop = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(10);
      await Promise.resolve(); // a longer chain between timers
      await null;
      steps.push(time.now - t0);
    }
  })();
  setTimeout(() => steps.push(-(time.now - t0)), 15);
  await time.tickAsync(100);
  await loop;
  assert.deepEqual(steps, [10, -15, 20, 30]);
});

Deno.test("FakeTime nextAsync fires one timer; runAllAsync empties the queue and refuses an endless interval", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const fired: number[] = [];
  setTimeout(() => fired.push(time.now - t0), 40);
  setTimeout(() => fired.push(time.now - t0), 70);
  assert.equal(await time.nextAsync(), true);
  assert.deepEqual(fired, [40]);
  await time.runAllAsync();
  assert.deepEqual(fired, [40, 70]);
  assert.equal(await time.nextAsync(), false);
  const id = setInterval(() => {}, 1);
  await assert.rejects(time.runAllAsync(50), /still timers after 50/);
  clearInterval(id);
});

Deno.test("FakeTime a pending timer left at dispose never fires, and no real timer leaks", async () => {
  let fired = false;
  {
    using _time = new FakeTime();
    setTimeout(() => fired = true, 10);
    setInterval(() => fired = true, 10);
  }
  await sleep(20); // real time again
  assert.equal(fired, false);
});
