// Shared cases of Batcher (lib/batcher.ts), run on every runtime like
// tests/cross/cases.ts.
import {
  type Case,
  check,
  equal,
  gate,
  rejects,
  sleep,
  throws,
} from "./_check.ts";

export const cases: Case[] = [
  {
    name:
      "Batcher.process() coalesces calls into batches of maxSize, one result per caller",
    async run({ Batcher }) {
      const batches: number[][] = [];
      const batcher = new Batcher(async (xs: number[]) => {
        batches.push(xs);
        await sleep(1);
        return xs.map((x) => x * 2);
      }, { maxSize: 4, maxWaitMs: 1000, concurrency: 2 });
      const out = await Promise.all(
        [0, 1, 2, 3, 4, 5, 6, 7].map((x) => batcher.process(x)),
      );
      equal(out, [0, 2, 4, 6, 8, 10, 12, 14]);
      equal(batches, [[0, 1, 2, 3], [4, 5, 6, 7]]);
      await batcher.close();
    },
  },
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
      "Batcher: an Error result rejects that caller alone; a thrown error rejects the whole batch",
    async run({ Batcher }) {
      const bad = new Batcher(
        (xs: number[]) => xs.map((x) => x < 0 ? new RangeError(`${x}`) : x),
        { maxSize: 3 },
      );
      const [ok1, fail, ok2] = await Promise.allSettled([
        bad.process(1),
        bad.process(-1),
        bad.process(2),
      ]);
      equal([ok1.status, fail.status, ok2.status], [
        "fulfilled",
        "rejected",
        "fulfilled",
      ]);
      check(
        fail.status === "rejected" && fail.reason instanceof RangeError,
        "the Error result",
      );
      await bad.close();
      const boom = new Error("boom");
      const throwing = new Batcher((_: number[]): number[] => {
        throw boom;
      }, { maxSize: 2 });
      const both = await Promise.allSettled([
        throwing.process(1),
        throwing.process(2),
      ]);
      equal(
        both.map((r) => r.status === "rejected" && r.reason === boom),
        [true, true],
      );
      await throwing.close();
    },
  },
  {
    name:
      "Batcher: a result of the wrong length rejects every caller of the batch",
    async run({ Batcher }) {
      const batcher = new Batcher((xs: number[]) => xs.slice(1), {
        maxSize: 3,
      });
      const results = await Promise.allSettled(
        [1, 2, 3].map((x) => batcher.process(x)),
      );
      check(
        results.every((r) => r.status === "rejected"),
        "every caller rejected",
      );
      const reason = (results[0] as PromiseRejectedResult).reason;
      check(
        /3/.test(String(reason)) && /2/.test(String(reason)),
        `the error names both lengths: ${reason}`,
      );
      await batcher.close();
    },
  },
  {
    name: "Batcher concurrency: never more batches in flight than the limit",
    async run({ Batcher }) {
      let running = 0;
      let peak = 0;
      const batcher = new Batcher(async (xs: number[]) => {
        peak = Math.max(peak, ++running);
        await sleep(2);
        running--;
        return xs;
      }, { maxSize: 2, concurrency: 2 });
      const out = await Promise.all(
        Array.from({ length: 12 }, (_, i) => batcher.process(i)),
      );
      equal(out, Array.from({ length: 12 }, (_, i) => i));
      equal(peak, 2, "peak batches in flight");
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
      "Batcher stats: calls = succeeded + failed + cancelled + pending + waiting + inFlight",
    async run({ Batcher }) {
      const batcher = new Batcher(
        (xs: number[]) => xs.map((x) => x === 3 ? new Error("x") : x),
        { maxSize: 2 },
      );
      await Promise.allSettled([1, 2, 3, 4, 5].map((x) => batcher.process(x)));
      const s = batcher.stats();
      equal(
        s.calls,
        s.succeeded + s.failed + s.cancelled + s.pending + s.waiting +
          s.inFlight,
        "balance",
      );
      equal([s.calls, s.succeeded, s.failed, s.batchesSent], [5, 4, 1, 3]);
      await batcher.close();
      const bad = throws(
        () => new Batcher((xs: number[]) => xs, { maxSize: -1 }),
        "maxSize: -1",
      );
      check(bad instanceof RangeError, `RangeError, got ${bad}`);
    },
  },
];
