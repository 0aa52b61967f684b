// Shared cases of Pool and asCompleted (lib/pool.ts, lib/as_completed.ts),
// run on every runtime like tests/cross/cases.ts.
import {
  aborted,
  type Case,
  check,
  equal,
  gate,
  rejects,
  sleep,
  until,
} from "./_check.ts";

export const cases: Case[] = [
  {
    name:
      "Pool.submit() runs at most concurrency tasks at once and resolves each result",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 3 });
      let running = 0;
      let peak = 0;
      const work = async (x: number, y: number) => {
        peak = Math.max(peak, ++running);
        await sleep(1 + (x % 3));
        running--;
        return x * y;
      };
      const out = await Promise.all(
        Array.from({ length: 12 }, (_, i) => pool.submit(work, i, 10)),
      );
      equal(out, Array.from({ length: 12 }, (_, i) => i * 10));
      equal(peak, 3, "peak concurrency");
      await pool.close();
    },
  },
  {
    name:
      "Pool.run() starts higher priorities first, equal ones first in first out",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 1 });
      const order: string[] = [];
      const unblock = gate();
      const blocker = pool.run(() => unblock.promise);
      const tasks = [["low", 1], ["a", 5], ["critical", 10], ["b", 5]] as const;
      const done = tasks.map(([name, priority]) =>
        pool.run(() => order.push(name), { priority })
      );
      equal(pool.pending, 4, "pending");
      equal(pool.active, 1, "active");
      unblock.resolve();
      await Promise.all([blocker, ...done]);
      equal(order, ["critical", "a", "b", "low"]);
      await pool.close();
    },
  },
  {
    name:
      "Pool.run() passes ctx with signal, workerId within concurrency and attempt",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 2 });
      const ids = await Promise.all(
        [0, 1, 2, 3].map(() =>
          pool.run(async (ctx) => {
            check(ctx.signal instanceof AbortSignal, "ctx.signal");
            equal(ctx.attempt, 1, "attempt");
            await sleep(1);
            return ctx.workerId;
          })
        ),
      );
      check(ids.every((id) => id === 0 || id === 1), `workerIds ${ids}`);
      await pool.close();
    },
  },
  {
    name:
      "Pool.map() yields in input order by default and in completion order when asked",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 4 });
      const gates = [0, 1, 2, 3].map(() => gate());
      // Finishing order 2, 0, 3, 1, each released by the previous one.
      const finish = [2, 0, 3, 1];
      const fn = async (x: number) => {
        const at = finish.indexOf(x);
        if (at > 0) await gates[finish[at - 1]].promise;
        await sleep(1);
        gates[x].resolve();
        return x * 10;
      };
      const inOrder: number[] = [];
      for await (const y of pool.map(fn, [0, 1, 2, 3])) inOrder.push(y);
      equal(inOrder, [0, 10, 20, 30]);
      for (let i = 0; i < 4; i++) gates[i] = gate();
      const done: number[] = [];
      for await (
        const y of pool.map(fn, [0, 1, 2, 3], { order: "completion" })
      ) done.push(y);
      equal(done, [20, 0, 30, 10]);
      await pool.close();
    },
  },
  {
    name:
      "asCompleted() yields values in the order they settle and throws a rejection at its turn",
    async run({ asCompleted }) {
      const a = gate<string>();
      const b = gate<string>();
      const out: string[] = [];
      const loop = (async () => {
        for await (const v of asCompleted([a.promise, b.promise, "now"])) {
          out.push(v);
          if (v === "now") b.resolve("b");
          if (v === "b") a.resolve("a");
        }
      })();
      await loop;
      equal(out, ["now", "b", "a"]);
      const boom = new Error("boom");
      const seen: number[] = [];
      const e = await rejects(
        (async () => {
          for await (const v of asCompleted([1, Promise.reject(boom)])) {
            seen.push(v);
          }
        })(),
        "rejection",
      );
      equal(e, boom);
      equal(seen, [1]);
    },
  },
  {
    name:
      "Pool.close() drains queued tasks, then submit() rejects with a TypeError",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 1 });
      const ran: number[] = [];
      const tasks = [1, 2, 3].map((x) =>
        pool.submit(async () => {
          await sleep(1);
          ran.push(x);
        })
      );
      await pool.close();
      equal(ran, [1, 2, 3]);
      await Promise.all(tasks);
      equal(pool.closed, true, "closed");
      const e = await rejects(pool.submit(() => 1), "after close");
      check(e instanceof TypeError, `TypeError, got ${e}`);
    },
  },
  {
    name:
      "Pool.close({ cancelPending }) rejects queued tasks and aborts running ones; every promise settles",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 1 });
      const started = gate();
      let sawAbort = false;
      const running = pool.run(async (ctx) => {
        started.resolve();
        await aborted(ctx.signal);
        sawAbort = true;
        return "stopped";
      });
      const queued = pool.run(() => "never");
      await started.promise;
      await pool.close({ cancelPending: true });
      check(sawAbort, "the running task's ctx.signal aborted");
      equal(
        await running,
        "stopped",
        "a running task settles with what it returns",
      );
      const e = await rejects(queued, "queued task");
      check(e instanceof DOMException, `DOMException, got ${e}`);
      equal((e as DOMException).name, "AbortError");
      equal(pool.active + pool.pending, 0);
    },
  },
  {
    name:
      "Pool.run() signal: aborting a queued task rejects it with the reason and it never runs",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 1 });
      const unblock = gate();
      const blocker = pool.run(() => unblock.promise);
      const controller = new AbortController();
      let ran = false;
      const task = pool.run(() => (ran = true), { signal: controller.signal });
      const reason = new Error("not needed");
      controller.abort(reason);
      equal(await rejects(task, "aborted task"), reason);
      unblock.resolve();
      await blocker;
      await pool.onIdle();
      equal(ran, false, "the aborted task never ran");
      await pool.close();
    },
  },
  {
    name:
      "Pool retry and timeoutMs: a flaky task succeeds on attempt 3; a slow one fails with TimeoutError",
    async run({ Pool, TimeoutError }) {
      const pool = new Pool({
        concurrency: 2,
        retry: { attempts: 3, delayMs: 1 },
      });
      const attempts: number[] = [];
      const value = await pool.run((ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error("flaky");
        return "ok";
      });
      equal(value, "ok");
      equal(attempts, [1, 2, 3]);
      await pool.close();
      const timed = new Pool({ timeoutMs: 10 });
      const e = await rejects(
        timed.run(async (ctx) => {
          await aborted(ctx.signal);
        }),
        "timeout",
      );
      check(e instanceof TimeoutError, `TimeoutError, got ${e}`);
      await timed.close();
    },
  },
  {
    name:
      "Pool.pause(), resume(), onIdle() and onSizeLessThan() resolve when their condition holds",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 2 });
      await pool.onIdle(); // already idle: resolves at once
      pool.pause();
      let ran = 0;
      const tasks = [1, 2, 3, 4].map(() => pool.run(() => ran++));
      await sleep(5);
      equal(ran, 0, "paused: nothing starts");
      equal(pool.pending, 4);
      let small = false;
      const below = pool.onSizeLessThan(1).then(() => (small = true));
      pool.resume();
      await Promise.all(tasks);
      await below;
      check(small, "onSizeLessThan(1)");
      await until(() => pool.active === 0, "idle");
      await pool.onIdle();
      equal(ran, 4);
      await pool.close();
    },
  },
];
