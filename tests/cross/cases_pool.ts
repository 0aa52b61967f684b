// Shared cases of Pool and asCompleted (lib/pool.ts, lib/as_completed.ts),
// run on every runtime like tests/cross/cases.ts. One smoke case runs every
// entry point; the others rest on AbortSignal, DOMException and real timers.
// Scheduling (concurrency, priorities, order, draining, pause) is pure logic,
// pinned in tests/pool_test.ts.
import {
  aborted,
  type Case,
  check,
  equal,
  gate,
  rejects,
  sleep,
} from "./_check.ts";

export const cases: Case[] = [
  {
    // The Pool smoke case: every entry point once on this runtime. Scheduling
    // (concurrency, priorities, order, draining) is pinned in tests/pool_test.ts.
    name:
      "Pool.submit(), run() and map() run on this runtime: submit passes its arguments, ctx.signal is an AbortSignal, map yields its results",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 2 });
      equal(await pool.submit((x: number, y: number) => x * y, 6, 7), 42);
      const ctx = await pool.run(async (ctx) => {
        await sleep(1);
        return ctx;
      });
      check(ctx.signal instanceof AbortSignal, "ctx.signal");
      equal(ctx.signal.aborted, false, "ctx.signal.aborted");
      const out: number[] = [];
      for await (
        const y of pool.map(async (x: number) => {
          await sleep(1);
          return x * 10;
        }, [0, 1, 2, 3])
      ) out.push(y);
      equal(out, [0, 10, 20, 30]);
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
    // Real timers only: the exact backoff and deadline times are pinned on a
    // fake clock in tests/pool_test.ts.
    name:
      "Pool retry and timeoutMs on real timers: the backoff timer fires and a flaky task succeeds; the deadline fires, aborts ctx.signal and the task fails with a TimeoutError",
    async run({ Pool, TimeoutError }) {
      const pool = new Pool({ retry: { attempts: 3, delayMs: 1 } });
      const value = await pool.run((ctx) => {
        if (ctx.attempt < 3) throw new Error("flaky");
        return "ok";
      });
      equal(value, "ok", "succeeded after the backoffs");
      await pool.close();
      const timed = new Pool({ timeoutMs: 10 });
      let reason: unknown;
      const e = await rejects(
        timed.run(async (ctx) => {
          await Promise.resolve();
          check(!ctx.signal.aborted, "the deadline has not fired at once");
          await aborted(ctx.signal);
          reason = ctx.signal.reason;
        }),
        "timeout",
      );
      check(e instanceof TimeoutError, `TimeoutError, got ${e}`);
      equal(reason, e, "ctx.signal.reason is the TimeoutError");
      await timed.close();
    },
  },
  {
    name:
      "Pool.run() retry and timeoutMs given per call override the pool's: a call retries on a pool without retry, { attempts: 1 } turns the pool's retry off, a call's deadline fires with a TimeoutError",
    async run({ Pool, TimeoutError }) {
      const plain = new Pool({ concurrency: 2 });
      const value = await plain.run((ctx) => {
        if (ctx.attempt < 3) throw new Error("flaky");
        return ctx.attempt;
      }, { retry: { attempts: 3, delayMs: 1 } });
      equal(value, 3, "retried on a pool without retry");
      let reason: unknown;
      const e = await rejects(
        plain.run(async (ctx) => {
          await aborted(ctx.signal);
          reason = ctx.signal.reason;
        }, { timeoutMs: 10 }),
        "per-call timeout",
      );
      check(e instanceof TimeoutError, `TimeoutError, got ${e}`);
      equal(reason, e, "ctx.signal.reason is the TimeoutError");
      await plain.close();
      const retrying = new Pool({ retry: { attempts: 5, delayMs: 1 } });
      let calls = 0;
      await rejects(
        retrying.run(() => {
          calls++;
          throw new Error("no");
        }, { retry: { attempts: 1 } }),
        "no retry for this call",
      );
      equal(calls, 1, "one attempt");
      await retrying.close();
    },
  },
  {
    name:
      'Pool maxQueued: onFull "reject" refuses a task beyond the bound with a QueueFullError; onFull "wait" holds it and lets it in as room frees, in arrival order',
    async run({ Pool, QueueFullError }) {
      const strict = new Pool({
        concurrency: 1,
        maxQueued: 1,
        onFull: "reject",
      });
      const unblock = gate();
      const running = strict.submit(() => unblock.promise);
      const queued = strict.submit(() => "queued");
      const e = await rejects(strict.submit(() => "refused"), "queue full");
      check(e instanceof QueueFullError, `QueueFullError, got ${e}`);
      check(
        (e as Error).message.includes("maxQueued: 1"),
        `the message names the bound: ${(e as Error).message}`,
      );
      unblock.resolve();
      await running;
      equal(await queued, "queued");
      await strict.close();

      const waiting = new Pool({ concurrency: 1, maxQueued: 1 });
      const order: number[] = [];
      const go = gate();
      const tasks = [0, 1, 2, 3].map((i) =>
        waiting.submit(async () => {
          order.push(i);
          if (i === 0) await go.promise;
          await sleep(1);
          return i;
        })
      );
      const s = waiting.stats();
      equal(
        [s.active, s.queued, s.waiting],
        [1, 1, 2],
        "active, queued, waiting",
      );
      go.resolve();
      equal(await Promise.all(tasks), [0, 1, 2, 3]);
      equal(order, [0, 1, 2, 3], "arrival order");
      equal(waiting.stats().waiting, 0);
      await waiting.close();
    },
  },
];
