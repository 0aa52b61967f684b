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
];
