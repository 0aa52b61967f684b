// Tests of the Batcher's DataLoader parity (lib/batcher.ts, lib/_batcher_keys.ts):
// `key` (calls with one key share an item), `cache` (memoized results, the
// in-flight dedupe, clear / clearAll / prime) and `minSize`. Time-dependent
// cases run on FakeTime.
import assert from "node:assert/strict";
import {
  Batcher,
  type BatcherCache,
  type BatcherStats,
  QueueFullError,
} from "../mod.ts";
import { deferred, FakeTime, whenAborted } from "./_helpers.ts";

/** Lets every pending microtask run (no timer turn). */
async function microtasks(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** The accounting invariant of BatcherStats with keys and a cache. */
function assertAccounted(s: BatcherStats): void {
  assert.equal(
    s.calls,
    s.succeeded + s.failed + s.cancelled + s.pending + s.waiting +
      s.inFlight + s.deduped + s.cacheHits,
    JSON.stringify(s),
  );
}

interface User {
  id: number;
  name: string;
}

/** A batcher of users by id that records its batches. */
function users(options: { cache?: boolean; maxWaitMs?: number } = {}) {
  const batches: number[][] = [];
  const batcher = new Batcher((reqs: { id: number }[]) => {
    batches.push(reqs.map((r) => r.id));
    return reqs.map((r) =>
      r.id < 0 ? new Error(`no user ${r.id}`) : { id: r.id, name: `u${r.id}` }
    );
  }, { maxSize: 10, key: (r) => r.id, ...options });
  return { batcher, batches };
}

// ---------------------------------------------------------------------------
// key

Deno.test("Batcher key: calls with the same key in one forming batch share one item and one result", async () => {
  const { batcher, batches } = users();
  const [a, b, c, d] = await Promise.all([
    batcher.process({ id: 1 }),
    batcher.process({ id: 2 }),
    batcher.process({ id: 1 }),
    batcher.process({ id: 1 }),
  ]);
  assert.deepEqual(batches, [[1, 2]]);
  assert.equal(a, c); // the same result object
  assert.equal(a, d);
  assert.deepEqual(b, { id: 2, name: "u2" });
  const s = batcher.stats();
  assert.deepEqual([s.calls, s.deduped, s.itemsProcessed, s.succeeded], [
    4,
    2,
    2,
    2,
  ]);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher key: the first caller's item is the one sent", async () => {
  const sent: string[][] = [];
  const batcher = new Batcher((xs: string[]) => {
    sent.push(xs);
    return xs.map((x) => x.toUpperCase());
  }, { maxSize: 10, key: (x) => x.toLowerCase() });
  const results = await Promise.all(
    ["Ab", "aB", "AB", "c"].map((x) => batcher.process(x)),
  );
  assert.deepEqual(sent, [["Ab", "c"]]);
  assert.deepEqual(results, ["AB", "AB", "AB", "C"]);
  await batcher.close();
});

Deno.test("Batcher key: without a cache, a key seen again after its batch was sent makes a new item", async () => {
  const gate = deferred();
  const batches: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    batches.push(xs);
    await gate.promise;
    return xs.map((x) => x * 10);
  }, { maxSize: 10, key: (x) => x, concurrency: 2 });
  const first = batcher.process(1);
  await microtasks(); // [1] is sent
  const second = batcher.process(1);
  gate.resolve();
  assert.deepEqual(await Promise.all([first, second]), [10, 10]);
  assert.deepEqual(batches, [[1], [1]]);
  assert.equal(batcher.stats().deduped, 0);
  await batcher.close();
});

Deno.test("Batcher key: an Error result rejects every caller of the shared item", async () => {
  const { batcher } = users();
  const all = await Promise.allSettled([
    batcher.process({ id: -1 }),
    batcher.process({ id: -1 }),
    batcher.process({ id: 3 }),
  ]);
  assert.deepEqual(all.map((r) => r.status), [
    "rejected",
    "rejected",
    "fulfilled",
  ]);
  const s = batcher.stats();
  assert.deepEqual([s.failed, s.succeeded, s.deduped], [1, 1, 1]);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher key: a key function that throws rejects that call alone", async () => {
  const batcher = new Batcher((xs: string[]) => xs, {
    maxSize: 10,
    key: (x) => {
      if (x === "bad") throw new TypeError("no key for bad");
      return x;
    },
  });
  const [bad, good] = await Promise.allSettled([
    batcher.process("bad"),
    batcher.process("good"),
  ]);
  assert.equal(bad.status, "rejected");
  assert.equal((bad as PromiseRejectedResult).reason.message, "no key for bad");
  assert.deepEqual(good, { status: "fulfilled", value: "good" });
  assertAccounted(batcher.stats());
  await batcher.close();
});

Deno.test("Batcher key: a caller that aborts leaves alone; the shared item stays in the batch for the others", async () => {
  using time = new FakeTime();
  const { batcher, batches } = users({ maxWaitMs: 100 });
  const controller = new AbortController();
  const leaving = batcher.process({ id: 1 }, { signal: controller.signal });
  const staying = batcher.process({ id: 1 });
  const reason = new Error("caller left");
  controller.abort(reason);
  await assert.rejects(leaving, (e) => e === reason);
  await time.tickAsync(100);
  assert.deepEqual(await staying, { id: 1, name: "u1" });
  assert.deepEqual(batches, [[1]]);
  assertAccounted(batcher.stats());
  await batcher.close();
});

Deno.test("Batcher key: a later caller with a signal keeps the item when the first caller aborts", async () => {
  using time = new FakeTime();
  const { batcher, batches } = users({ maxWaitMs: 100 });
  const first = new AbortController();
  const second = new AbortController();
  const a = batcher.process({ id: 7 }, { signal: first.signal });
  const b = batcher.process({ id: 7 }, { signal: second.signal });
  first.abort(new Error("first left"));
  await assert.rejects(a, { message: "first left" });
  await time.tickAsync(100);
  assert.deepEqual(await b, { id: 7, name: "u7" });
  assert.deepEqual(batches, [[7]]);
  await batcher.close();
});

Deno.test("Batcher key: when every caller of a shared item aborts, the item leaves the batch", async () => {
  using time = new FakeTime();
  const { batcher, batches } = users({ maxWaitMs: 100 });
  const c1 = new AbortController();
  const c2 = new AbortController();
  const a = batcher.process({ id: 1 }, { signal: c1.signal });
  const b = batcher.process({ id: 1 }, { signal: c2.signal });
  const other = batcher.process({ id: 2 });
  c1.abort(new Error("one"));
  c2.abort(new Error("two"));
  await assert.rejects(a, { message: "one" });
  await assert.rejects(b, { message: "two" });
  // A new call with that key makes a new item (the old one is gone).
  const again = batcher.process({ id: 1 });
  await time.tickAsync(100);
  assert.deepEqual(await Promise.all([other, again]), [
    { id: 2, name: "u2" },
    { id: 1, name: "u1" },
  ]);
  assert.deepEqual(batches, [[2, 1]]);
  const s = batcher.stats();
  assert.equal(s.cancelled, 1); // one item, shared by two callers
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher key: when every caller of a sent shared item aborts, its batch's ctx.signal aborts", async () => {
  let signal: AbortSignal | undefined;
  const batcher = new Batcher(async (xs: number[], ctx) => {
    signal = ctx.signal;
    await whenAborted(ctx.signal);
    return xs;
  }, { maxSize: 10, key: (x) => x });
  const c1 = new AbortController();
  const c2 = new AbortController();
  const a = batcher.process(1, { signal: c1.signal });
  const b = batcher.process(1, { signal: c2.signal });
  await microtasks();
  assert(signal !== undefined);
  c1.abort(new Error("one"));
  assert.equal(signal.aborted, false); // the second caller still waits
  c2.abort(new Error("two"));
  assert.equal(signal.aborted, true);
  await assert.rejects(a, { message: "one" });
  await assert.rejects(b, { message: "two" });
  await batcher.close();
});

Deno.test("Batcher key: a caller without a signal pins the shared item: others aborting never take it out", async () => {
  using time = new FakeTime();
  const { batcher, batches } = users({ maxWaitMs: 100 });
  const c = new AbortController();
  const pinned = batcher.process({ id: 4 });
  const leaving = batcher.process({ id: 4 }, { signal: c.signal });
  c.abort(new Error("left"));
  await assert.rejects(leaving, { message: "left" });
  await time.tickAsync(100);
  assert.deepEqual(await pinned, { id: 4, name: "u4" });
  assert.deepEqual(batches, [[4]]);
  await batcher.close();
});

Deno.test("Batcher key: a call with the key of an item waiting for room joins it and is not refused", async () => {
  const gate = deferred();
  const batcher = new Batcher(async (xs: number[]) => {
    await gate.promise;
    return xs;
  }, { maxSize: 1, maxQueueSize: 1, onFull: "reject", key: (x) => x });
  const running = batcher.process(1);
  await microtasks(); // [1] runs and holds the only slot
  const queued = batcher.process(2); // fills the queue
  await assert.rejects(batcher.process(3), QueueFullError);
  const joined = batcher.process(2); // same key: no new item
  gate.resolve();
  assert.deepEqual(await Promise.all([running, queued, joined]), [1, 2, 2]);
  assertAccounted(batcher.stats());
  await batcher.close();
});

Deno.test("Batcher key: close({ force: true }) rejects every caller of a shared item", async () => {
  const { batcher } = users({ maxWaitMs: 60_000 });
  const a = batcher.process({ id: 1 });
  const b = batcher.process({ id: 1 }, {
    signal: new AbortController().signal,
  });
  await batcher.close({ force: true });
  await assert.rejects(a, { name: "AbortError" });
  await assert.rejects(b, { name: "AbortError" });
  assertAccounted(batcher.stats());
});

// ---------------------------------------------------------------------------
// cache

Deno.test("Batcher cache: a cached result resolves at once, without a batch", async () => {
  const { batcher, batches } = users({ cache: true });
  const first = await batcher.process({ id: 1 });
  const again = batcher.process({ id: 1 });
  await microtasks(1);
  assert.equal(await again, first);
  assert.deepEqual(batches, [[1]]);
  const s = batcher.stats();
  assert.deepEqual([s.calls, s.cacheHits, s.batchesSent], [2, 1, 1]);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher cache: without key, the item itself is the key", async () => {
  const batches: string[][] = [];
  const batcher = new Batcher((xs: string[]) => {
    batches.push(xs);
    return xs.map((x) => x.length);
  }, { maxSize: 10, cache: true });
  assert.deepEqual(
    await Promise.all(["a", "bb", "a"].map((x) => batcher.process(x))),
    [1, 2, 1],
  );
  assert.equal(await batcher.process("bb"), 2);
  assert.deepEqual(batches, [["a", "bb"]]);
  await batcher.close();
});

Deno.test("Batcher cache: an Error result, a failed batch and an undefined result are not cached", async () => {
  let calls = 0;
  let throwing = true;
  const batcher = new Batcher((xs: string[]) => {
    calls++;
    if (xs.includes("boom") && throwing) throw new Error("backend down");
    return xs.map((x) =>
      x === "bad" ? new Error("bad item") : x === "none" ? undefined : x
    );
  }, { maxSize: 10, cache: true });
  await assert.rejects(batcher.process("bad"), { message: "bad item" });
  await assert.rejects(batcher.process("bad"), { message: "bad item" });
  await assert.rejects(batcher.process("boom"), { message: "backend down" });
  throwing = false;
  assert.equal(await batcher.process("boom"), "boom");
  assert.equal(await batcher.process("none"), undefined);
  assert.equal(await batcher.process("none"), undefined);
  assert.equal(calls, 6);
  assert.equal(batcher.stats().cacheHits, 0);
  await batcher.close();
});

Deno.test("Batcher cache: a call for a key in flight joins that item (the in-flight dedupe)", async () => {
  const gate = deferred();
  const batches: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    batches.push(xs);
    await gate.promise;
    return xs.map((x) => x * 10);
  }, { maxSize: 10, cache: true, concurrency: 4 });
  const first = batcher.process(1);
  await microtasks(); // [1] is sent and runs
  const second = batcher.process(1);
  const third = batcher.process(2);
  await microtasks();
  gate.resolve();
  assert.deepEqual(await Promise.all([first, second, third]), [10, 10, 20]);
  assert.deepEqual(batches, [[1], [2]]);
  const s = batcher.stats();
  assert.deepEqual([s.deduped, s.cacheHits], [1, 0]);
  assertAccounted(s);
  await batcher.close();
});

Deno.test("Batcher.clear() forgets one key; a batch in flight for it no longer answers later calls nor fills the cache", async () => {
  const gate = deferred();
  let version = 1;
  const batches: string[][] = [];
  const batcher = new Batcher(async (xs: string[]) => {
    batches.push(xs);
    const v = version;
    if (xs.includes("slow")) await gate.promise;
    return xs.map((x) => `${x}@${v}`);
  }, { maxSize: 10, cache: true, concurrency: 2 });
  assert.equal(await batcher.process("a"), "a@1");
  version = 2;
  assert.equal(batcher.clear("a"), batcher); // chains
  assert.equal(await batcher.process("a"), "a@2");
  assert.equal(await batcher.process("a"), "a@2"); // cached again
  const inFlight = batcher.process("slow");
  await microtasks();
  batcher.clear("slow");
  version = 3;
  const fresh = batcher.process("slow"); // a new item, not the cleared one
  gate.resolve();
  assert.deepEqual(await Promise.all([inFlight, fresh]), ["slow@2", "slow@3"]);
  assert.equal(await batcher.process("slow"), "slow@3");
  assert.deepEqual(batches, [["a"], ["a"], ["slow"], ["slow"]]);
  await batcher.close();
});

Deno.test("Batcher.clearAll() forgets every cached result", async () => {
  const { batcher, batches } = users({ cache: true });
  await Promise.all([batcher.process({ id: 1 }), batcher.process({ id: 2 })]);
  assert.equal(batcher.clearAll(), batcher);
  await Promise.all([batcher.process({ id: 1 }), batcher.process({ id: 2 })]);
  assert.deepEqual(batches, [[1, 2], [1, 2]]);
  await batcher.close();
});

Deno.test("Batcher.clear() and clearAll() do nothing without a cache", async () => {
  const { batcher } = users();
  batcher.clear(1).clearAll();
  assert.deepEqual(await batcher.process({ id: 1 }), { id: 1, name: "u1" });
  await batcher.close();
});

Deno.test("Batcher.prime() caches a result unless one is cached; later calls resolve with it without a batch", async () => {
  const { batcher, batches } = users({ cache: true });
  const primed = { id: 1, name: "primed" };
  assert.equal(batcher.prime(1, primed), batcher);
  batcher.prime(1, { id: 1, name: "ignored" }); // already cached
  assert.equal(await batcher.process({ id: 1 }), primed);
  batcher.clear(1).prime(1, { id: 1, name: "replaced" });
  assert.equal((await batcher.process({ id: 1 })).name, "replaced");
  assert.deepEqual(batches, []);
  assert.equal(batcher.stats().cacheHits, 2);
  await batcher.close();
});

Deno.test("Batcher.prime() throws a TypeError without a cache, and for an Error or undefined", async () => {
  const { batcher: uncached } = users();
  assert.throws(() => uncached.prime(1, { id: 1, name: "x" }), {
    name: "TypeError",
    message:
      "Batcher.prime() needs the 'cache' option: this batcher has no cache",
  });
  const plain = new Batcher((xs: number[]) => xs, { maxSize: 2 });
  assert.throws(() => plain.prime(1, 1), TypeError);
  const { batcher } = users({ cache: true });
  assert.throws(
    () => batcher.prime(1, new Error("x") as unknown as User),
    /current value is an Error/,
  );
  assert.throws(
    () => batcher.prime(1, undefined as unknown as User),
    /current value is undefined/,
  );
  await Promise.all([uncached.close(), plain.close(), batcher.close()]);
});

Deno.test("Batcher cache: a store whose get expires entries gives a time-to-live (FakeTime)", async () => {
  using time = new FakeTime();
  class TtlCache<K, V> implements BatcherCache<K, V> {
    readonly #map = new Map<K, { value: V; until: number }>();
    constructor(readonly ttlMs: number) {}
    get(key: K): V | undefined {
      const entry = this.#map.get(key);
      if (entry === undefined || entry.until > Date.now()) return entry?.value;
      this.#map.delete(key);
      return undefined;
    }
    set(key: K, value: V): void {
      this.#map.set(key, { value, until: Date.now() + this.ttlMs });
    }
    delete(key: K): boolean {
      return this.#map.delete(key);
    }
    clear(): void {
      this.#map.clear();
    }
  }
  let loads = 0;
  const batcher = new Batcher((xs: string[]) => {
    loads++;
    return xs.map((x) => `${x}#${loads}`);
  }, { maxSize: 10, cache: new TtlCache<string, string>(1000) });
  assert.equal(await batcher.process("k"), "k#1");
  await time.tickAsync(999);
  assert.equal(await batcher.process("k"), "k#1");
  await time.tickAsync(1);
  assert.equal(await batcher.process("k"), "k#2");
  assert.equal(loads, 2);
  await batcher.close();
});

Deno.test("Batcher cache: a store whose set throws fails that key's callers alone", async () => {
  const store = new Map<number, number>();
  const cache: BatcherCache<number, number> = {
    get: (k) => store.get(k),
    set: (k, v) => {
      if (k === 2) throw new Error("store full");
      store.set(k, v);
    },
    delete: (k) => store.delete(k),
    clear: () => store.clear(),
  };
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 10, cache });
  const [a, b] = await Promise.allSettled([
    batcher.process(1),
    batcher.process(2),
  ]);
  assert.deepEqual(a, { status: "fulfilled", value: 1 });
  assert.equal((b as PromiseRejectedResult).reason.message, "store full");
  await batcher.close();
});

Deno.test("Batcher.process() after close() rejects even for a cached key", async () => {
  const { batcher } = users({ cache: true });
  await batcher.process({ id: 1 });
  await batcher.close();
  await assert.rejects(batcher.process({ id: 1 }), TypeError);
});

// ---------------------------------------------------------------------------
// minSize

Deno.test("Batcher minSize: a due batch waits until it holds minSize items, then goes at once (FakeTime)", async () => {
  using time = new FakeTime();
  const t0 = time.now;
  const sent: [number, number[]][] = [];
  const batcher = new Batcher((xs: number[]) => {
    sent.push([time.now - t0, xs]);
    return xs;
  }, { maxSize: 10, maxWaitMs: 100, minSize: 3 });
  const all = [batcher.process(1), batcher.process(2)];
  await time.tickAsync(100);
  assert.deepEqual(sent, []); // due, but 2 < minSize
  assert.equal(time.pending, 0); // no timer while it waits
  await time.tickAsync(400);
  all.push(batcher.process(3)); // the third item: sent at once
  await microtasks();
  assert.deepEqual(sent, [[500, [1, 2, 3]]]);
  // The next batch: minSize reached before the deadline waits for it.
  all.push(batcher.process(4), batcher.process(5), batcher.process(6));
  await time.tickAsync(99);
  assert.equal(sent.length, 1);
  await time.tickAsync(1);
  assert.deepEqual(sent[1], [600, [4, 5, 6]]);
  assert.deepEqual(await Promise.all(all), [1, 2, 3, 4, 5, 6]);
  await batcher.close();
});

Deno.test("Batcher minSize with maxWaitMs: 0: a batch goes the moment it holds minSize items", async () => {
  using time = new FakeTime();
  const sent: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    sent.push(xs);
    return xs;
  }, { maxSize: 4, minSize: 2 });
  const a = batcher.process(1);
  await time.tickAsync(10_000);
  assert.deepEqual(sent, []);
  const b = batcher.process(2);
  await microtasks();
  assert.deepEqual(sent, [[1, 2]]);
  // A full batch goes at once whatever minSize.
  const more = [3, 4, 5, 6, 7].map((x) => batcher.process(x));
  await microtasks();
  assert.deepEqual(sent, [[1, 2], [3, 4, 5, 6]]);
  await batcher.close(); // sends [7], below minSize
  assert.deepEqual(sent, [[1, 2], [3, 4, 5, 6], [7]]);
  assert.deepEqual(await Promise.all([a, b, ...more]), [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("Batcher minSize: close() sends whatever is left, however small", async () => {
  using time = new FakeTime();
  const sent: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    sent.push(xs);
    return xs;
  }, { maxSize: 10, maxWaitMs: 50, minSize: 5 });
  const p = batcher.process(1);
  await time.tickAsync(1000);
  assert.deepEqual(sent, []);
  await batcher.close();
  assert.equal(await p, 1);
  assert.deepEqual(sent, [[1]]);
  assert.equal(time.pending, 0);
});

Deno.test("Batcher minSize: an aborted caller does not count; the batch waits for another item", async () => {
  const sent: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    sent.push(xs);
    return xs;
  }, { maxSize: 10, minSize: 2 });
  const c = new AbortController();
  const a = batcher.process(1, { signal: c.signal });
  c.abort(new Error("left"));
  await assert.rejects(a, { message: "left" });
  const b = batcher.process(2);
  await microtasks();
  assert.deepEqual(sent, []);
  const d = batcher.process(3);
  assert.deepEqual(await Promise.all([b, d]), [2, 3]);
  assert.deepEqual(sent, [[2, 3]]);
  await batcher.close();
});

Deno.test("Batcher minSize counts items, not calls: calls sharing a key count once", async () => {
  const sent: number[][] = [];
  const batcher = new Batcher((xs: number[]) => {
    sent.push(xs);
    return xs;
  }, { maxSize: 10, minSize: 2, key: (x) => x });
  const a = batcher.process(1);
  const b = batcher.process(1);
  await microtasks();
  assert.deepEqual(sent, []);
  const c = batcher.process(2);
  assert.deepEqual(await Promise.all([a, b, c]), [1, 1, 2]);
  assert.deepEqual(sent, [[1, 2]]);
  await batcher.close();
});

// ---------------------------------------------------------------------------
// Validation, stats, types

Deno.test("Batcher() rejects bad key, cache and minSize options, naming the option and the value", () => {
  const fn = (xs: number[]) => xs;
  const cases: [unknown, ErrorConstructor, string][] = [
    [
      { maxSize: 5, key: "id" },
      TypeError,
      `'key' must be a function: current value is "id"`,
    ],
    [
      { maxSize: 5, cache: "yes" },
      TypeError,
      `'cache' must be a boolean or a Map-like object with get, set, delete and clear: current value is "yes"`,
    ],
    [
      { maxSize: 5, cache: { get() {} } },
      TypeError,
      "'cache' must be a boolean or a Map-like object with get, set, delete and clear: current value is an object",
    ],
    [
      { maxSize: 5, cache: null },
      TypeError,
      "'cache' must be a boolean or a Map-like object with get, set, delete and clear: current value is null",
    ],
    [
      { maxSize: 5, minSize: 0 },
      RangeError,
      "'minSize' must be a positive integer: current value is 0",
    ],
    [
      { maxSize: 5, minSize: 1.5 },
      RangeError,
      "'minSize' must be a positive integer: current value is 1.5",
    ],
    [
      { maxSize: 5, minSize: "2" },
      TypeError,
      `'minSize' must be a positive integer: current value is "2"`,
    ],
    [
      { maxSize: 5, minSize: 6 },
      RangeError,
      "'minSize' must be <= 'maxSize' (5): current value is 6",
    ],
    [
      { maxSize: 5, chache: true },
      TypeError,
      "'chache' is not an option of new Batcher(): did you mean 'cache'?",
    ],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(
      () => new Batcher(fn, options as { maxSize: number }),
      (e) => {
        assert(e instanceof type, `${JSON.stringify(options)}: ${e}`);
        assert.equal((e as Error).message, message);
        return true;
      },
    );
  }
  // Accepted: a Map, false, minSize equal to maxSize.
  new Batcher(fn, { maxSize: 5, cache: new Map(), minSize: 5 });
  new Batcher(fn, { maxSize: 5, cache: false });
});

Deno.test("Batcher.stats() without key or cache reports no cacheHits and no deduped", async () => {
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 4 });
  await Promise.all([1, 1, 2].map((x) => batcher.process(x)));
  const s = batcher.stats();
  assert.deepEqual([s.cacheHits, s.deduped, s.itemsProcessed], [0, 0, 3]);
  await batcher.close();
});

Deno.test("Batcher.stats() stays accounted under random keys, aborts, failures, cache hits and a final force close", async () => {
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const batcher = new Batcher(async (xs: number[]) => {
    await new Promise((r) => setTimeout(r, random() * 3));
    if (random() < 0.1) throw new Error("batch failed");
    return xs.map((x) => (x % 7 === 0 ? new Error("bad") : x));
  }, { maxSize: 5, maxWaitMs: 1, concurrency: 2, cache: true, minSize: 2 });
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    const key = Math.floor(random() * 40);
    const c = random() < 0.3 ? new AbortController() : undefined;
    // Settled at once, so a rejection is never left unhandled meanwhile.
    all.push(batcher.process(key, { signal: c?.signal }).catch((e) => e));
    if (c !== undefined && random() < 0.5) c.abort(new Error("left"));
    if (random() < 0.2) await new Promise((r) => setTimeout(r, random() * 2));
    if (random() < 0.02) batcher.clear(key);
    assertAccounted(batcher.stats());
  }
  await batcher.close({ force: true });
  assert.equal((await Promise.all(all)).length, 300);
  const s = batcher.stats();
  assertAccounted(s);
  assert.deepEqual([s.pending, s.waiting, s.inFlight], [0, 0, 0]);
  assert(s.cacheHits > 0 && s.deduped > 0, JSON.stringify(s));
});

Deno.test("Batcher types: the key type is inferred from key; clear and prime take it", async () => {
  const batcher = new Batcher(
    (reqs: { id: number }[]) => reqs.map((r) => `u${r.id}`),
    { maxSize: 4, key: (r) => r.id, cache: true },
  );
  batcher.prime(1, "one").clear(2);
  // @ts-expect-error: the key is a number
  batcher.prime("1", "one"); // a type error only
  const s: string = await batcher.process({ id: 1 });
  assert.equal(s, "one");
  // Without key, the key is the item.
  const plain = new Batcher((xs: string[]) => xs, { maxSize: 4, cache: true });
  plain.prime("a", "A");
  // @ts-expect-error: the key is a string
  plain.prime(1, "A");
  new Batcher((xs: number[]) => xs, {
    maxSize: 4,
    // @ts-expect-error: a cache of the wrong result type
    cache: new Map<number, string>(),
  });
  await Promise.all([batcher.close(), plain.close()]);
});
