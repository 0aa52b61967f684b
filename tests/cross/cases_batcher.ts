// Shared cases of Batcher (lib/batcher.ts), run on every runtime like
// tests/cross/cases.ts. Only what rests on AbortSignal, DOMException and real
// timers is here, plus QueueFullError as a smoke case; coalescing, results,
// concurrency and stats are pure logic, pinned in tests/batcher_test.ts.
import { type Case, check, equal, gate, rejects, sleep } from "./_check.ts";

export const cases: Case[] = [
  {
    name:
      "Batcher maxWaitMs sends a partial batch after its first item waited that long",
    async run({ Batcher }) {
      const batches: string[][] = [];
      const batcher = new Batcher((xs: string[]) => {
        batches.push(xs);
        return xs.map((x) => x.toUpperCase());
      }, { maxSize: 100, maxWaitMs: 10 });
      const a = batcher.process("a");
      const b = batcher.process("b");
      equal(await Promise.all([a, b]), ["A", "B"]);
      equal(await batcher.process("c"), "C");
      equal(batches, [["a", "b"], ["c"]]);
      await batcher.close();
    },
  },
  {
    name:
      "Batcher.process() signal: an aborted caller's item leaves the batch; the others are unaffected",
    async run({ Batcher }) {
      const batches: number[][] = [];
      const batcher = new Batcher((xs: number[]) => {
        batches.push(xs);
        return xs;
      }, { maxSize: 10, maxWaitMs: 10 });
      const controller = new AbortController();
      const a = batcher.process(1);
      const b = batcher.process(2, { signal: controller.signal });
      const c = batcher.process(3);
      const reason = new Error("caller left");
      controller.abort(reason);
      equal(await rejects(b, "aborted caller"), reason);
      equal(await Promise.all([a, c]), [1, 3]);
      equal(batches, [[1, 3]]);
      await batcher.close();
    },
  },
  {
    name:
      'Batcher maxQueueSize with onFull: "reject" rejects with a QueueFullError',
    async run({ Batcher, QueueFullError }) {
      const release = gate();
      const batcher = new Batcher(async (xs: number[]) => {
        await release.promise;
        return xs;
      }, { maxSize: 1, maxQueueSize: 1, onFull: "reject" });
      const first = batcher.process(1); // sent at once: holds the slot
      await sleep(1);
      const second = batcher.process(2); // queued: the queue is full
      const e = await rejects(batcher.process(3), "queue full");
      check(e instanceof QueueFullError, `QueueFullError, got ${e}`);
      equal(e.name, "QueueFullError");
      release.resolve();
      equal(await Promise.all([first, second]), [1, 2]);
      await batcher.close();
    },
  },
  {
    name:
      "Batcher.close() sends what is queued at once; close({ force }) rejects pending callers",
    async run({ Batcher }) {
      const batcher = new Batcher((xs: number[]) => xs.map((x) => -x), {
        maxSize: 10,
        maxWaitMs: 60_000,
      });
      const p = batcher.process(5);
      await batcher.close();
      equal(await p, -5);
      equal(batcher.closed, true);
      const e = await rejects(batcher.process(1), "after close");
      check(e instanceof TypeError, `TypeError, got ${e}`);
      const forced = new Batcher((xs: number[]) => xs, {
        maxSize: 10,
        maxWaitMs: 60_000,
      });
      const pending = forced.process(1);
      await forced.close({ force: true });
      const f = await rejects(pending, "forced close");
      equal((f as DOMException).name, "AbortError");
    },
  },
  {
    name:
      "Batcher key: calls with the same key share one item and one result; an aborted caller leaves alone",
    async run({ Batcher }) {
      const batches: number[][] = [];
      const batcher = new Batcher((reqs: { id: number }[]) => {
        batches.push(reqs.map((r) => r.id));
        return reqs.map((r) => ({ id: r.id }));
      }, { maxSize: 10, maxWaitMs: 10, key: (r) => r.id });
      const controller = new AbortController();
      const a = batcher.process({ id: 1 });
      const b = batcher.process({ id: 2 });
      const leaving = batcher.process({ id: 1 }, { signal: controller.signal });
      const c = batcher.process({ id: 1 });
      controller.abort(new Error("left"));
      equal(await rejects(leaving, "aborted caller"), new Error("left"));
      const [ra, rb, rc] = await Promise.all([a, b, c]);
      check(ra === rc, "one result object for key 1");
      equal(rb, { id: 2 });
      equal(batches, [[1, 2]]);
      equal(batcher.stats().deduped, 2);
      await batcher.close();
    },
  },
  {
    name:
      "Batcher cache: results are cached by key, failures are not; clear() and prime() as DataLoader's",
    async run({ Batcher }) {
      const batches: string[][] = [];
      const batcher = new Batcher((xs: string[]) => {
        batches.push(xs);
        return xs.map((x) => x === "bad" ? new Error("bad") : x.length);
      }, { maxSize: 10, cache: true });
      equal(
        await Promise.all(["ab", "abc", "ab"].map((x) => batcher.process(x))),
        [2, 3, 2],
      );
      equal(await batcher.process("abc"), 3); // cached
      await rejects(batcher.process("bad"), "Error result");
      await rejects(batcher.process("bad"), "not cached");
      batcher.clear("ab").prime("zz", 99);
      equal(await batcher.process("ab"), 2);
      equal(await batcher.process("zz"), 99);
      equal(batches, [["ab", "abc"], ["bad"], ["bad"], ["ab"]]);
      equal(batcher.stats().cacheHits, 2);
      await batcher.close();
    },
  },
  {
    name:
      "Batcher minSize: a due batch waits for minSize items, then goes at once; close() sends the rest",
    async run({ Batcher }) {
      const batches: number[][] = [];
      const batcher = new Batcher((xs: number[]) => {
        batches.push(xs);
        return xs;
      }, { maxSize: 10, maxWaitMs: 5, minSize: 2 });
      const a = batcher.process(1);
      await sleep(20);
      equal(batches, [], "due, but below minSize");
      equal(await Promise.all([a, batcher.process(2)]), [1, 2]);
      equal(batches, [[1, 2]]);
      const c = batcher.process(3);
      await batcher.close();
      equal(await c, 3);
      equal(batches, [[1, 2], [3]]);
    },
  },
];
