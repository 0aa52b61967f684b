// Shared cases of watching and steering a run (issue 19): item tracking,
// events with durations, live and adaptive concurrency, Pool events and
// stats. They run on every runtime like tests/cross/cases.ts; the details are
// pinned in tests/track_test.ts, tests/set_concurrency_test.ts,
// tests/item_events_test.ts, tests/pool_events_test.ts and
// tests/adaptive_limit_test.ts.
import { type Case, check, equal, gate, sleep, throws } from "./_check.ts";

export const cases: Case[] = [
  {
    name:
      "Flow.item() and items() track each item: statuses, attempts, errors and history",
    async run({ map, pipeline }) {
      const flow = pipeline(
        map(async (x: number, ctx) => {
          await sleep(1);
          if (x === 1 && ctx.attempt === 1) throw new Error("flaky");
          if (x === 2) throw new Error("bad");
          return x;
        }, {
          name: "work",
          retry: {
            attempts: 2,
            delayMs: 1,
            retryIf: (e) => (e as Error).message === "flaky",
          },
          onError: "skip",
        }),
      ).run([0, 1, 2, 3], { track: { history: 20 } });
      equal(await flow.collect(), [0, 1, 3]);
      const one = flow.item(1)!;
      equal(one.status, "done");
      equal(one.attempts, 2);
      equal((one.error as Error).message, "flaky");
      equal(one.history.map((h) => h.status), [
        "queued",
        "running",
        "retrying",
        "running",
        "done",
      ]);
      check(one.history.every((h) => typeof h.at === "number"), "times");
      equal([...flow.items({ status: "skipped" })].map((r) => r.id), [2]);
      equal([...flow.items({ status: "done" })].length, 3);
      throws(
        () => pipeline(map((x: number) => x)).run([1]).item(0),
        "item() without track",
      );
    },
  },
  {
    name:
      "Flow events: queued once per item per stage, completed with durationMs, concurrency on setConcurrency",
    async run({ map, pipeline }) {
      const flow = pipeline(
        map(async (x: number) => {
          await sleep(2);
          return x;
        }, { name: "a", concurrency: 1 }),
        map((x: number) => x, { name: "b" }),
      ).run([1, 2, 3]);
      const queued: string[] = [];
      const durations: number[] = [];
      const changes: unknown[] = [];
      flow.addEventListener("queued", (e) => {
        queued.push(`${e.detail.stage}/${e.detail.index}`);
      });
      flow.addEventListener("completed", (e) => {
        if (e.detail.stage === "a") durations.push(e.detail.durationMs!);
      });
      flow.addEventListener("concurrency", (e) => {
        const { stage, from, to, reason } = e.detail;
        changes.push({ stage, from, to, reason });
      });
      flow.setConcurrency("a", 3);
      equal(await flow.collect(), [1, 2, 3]);
      equal(queued.sort(), ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]);
      equal(durations.length, 3);
      check(durations.every((ms) => ms >= 1), `durations ${durations}`);
      equal(changes, [{ stage: "a", from: 1, to: 3, reason: "set" }]);
      equal(flow.stats().stages[0].concurrency, 3);
      const stats = flow.stats().stages[0].latency;
      check(stats.min <= stats.p50 && stats.p50 <= stats.p99, "min/p99");
    },
  },
  {
    name:
      "Flow.setConcurrency() raising starts waiting items at once; lowering interrupts no call",
    async run({ map, pipeline }) {
      const gates = [0, 1, 2, 3, 4, 5].map(() => gate());
      let running = 0;
      let peak = 0;
      const aborted: number[] = [];
      const flow = pipeline(map(async (i: number, ctx) => {
        running++;
        peak = Math.max(peak, running);
        ctx.signal.addEventListener("abort", () => aborted.push(i));
        await gates[i].promise;
        running--;
        return i;
      }, { name: "w", concurrency: 1 })).run([0, 1, 2, 3, 4, 5]);
      const out = flow.collect();
      await sleep(1);
      equal(running, 1, "one slot");
      flow.setConcurrency("w", 3);
      equal(running, 3, "raised: two more started in the same tick");
      flow.setConcurrency("w", 1);
      equal(running, 3, "lowered: nothing interrupted");
      gates[0].resolve();
      gates[1].resolve();
      await sleep(1);
      equal(running, 1, "no new start until under the limit");
      for (const g of gates) g.resolve();
      equal(await out, [0, 1, 2, 3, 4, 5]);
      equal(aborted, []);
      equal(peak, 3);
    },
  },
  {
    name:
      "map() with adaptive concurrency grows, then cuts on 429s from a simulated API, and delivers every result",
    async run({ map, pipeline }) {
      const capacity = 4;
      let running = 0;
      let overloaded = 0;
      const api = async (x: number) => {
        if (running >= capacity) {
          overloaded++;
          await sleep(1);
          throw Object.assign(new Error("Too Many Requests"), { status: 429 });
        }
        running++;
        await sleep(2);
        running--;
        return x;
      };
      const items = Array.from({ length: 150 }, (_, i) => i);
      const flow = pipeline(map(api, {
        name: "api",
        concurrency: { adaptive: { min: 1, max: 32 } },
        retry: { attempts: 20, delayMs: 1, maxDelayMs: 4 },
      })).run(items);
      const reasons = new Set<string>();
      flow.addEventListener("concurrency", (e) => reasons.add(e.detail.reason));
      equal(await flow.collect(), items);
      const stage = flow.stats().stages[0];
      const adaptive = stage.adaptive!;
      equal([adaptive.min, adaptive.max], [1, 32]);
      equal(stage.concurrency, adaptive.limit);
      check(adaptive.limit >= 1 && adaptive.limit <= 32, "within bounds");
      const limits = adaptive.history.map((h) => h.limit);
      check(Math.max(...limits) > 1, `it grew: ${limits}`);
      if (overloaded > 0) {
        const top = limits.indexOf(Math.max(...limits));
        check(
          limits.slice(top).some((l) => l < limits[top]),
          `cut after overload: ${limits}`,
        );
      }
      equal([...reasons], ["adaptive"]);
    },
  },
  {
    name:
      "Pool events and stats(): queued, active, completed, failed, idle; pool.concurrency raised while tasks wait",
    async run({ Pool }) {
      const pool = new Pool({ concurrency: 1 });
      const seen: string[] = [];
      for (const type of ["queued", "active", "completed", "failed", "idle"]) {
        pool.addEventListener(type as "idle", () => seen.push(type));
      }
      const g = gate();
      const a = pool.run(() => g.promise);
      const b = pool.run(async () => {
        await sleep(1);
        throw new Error("no");
      });
      equal(pool.active, 1);
      pool.concurrency = 2;
      equal(pool.active, 2, "raised: the waiting task started at once");
      await b.catch(() => {});
      g.resolve();
      await a;
      await pool.onIdle();
      const stats = pool.stats();
      equal(stats.completed, 1);
      equal(stats.failed, 1);
      equal(stats.concurrency, 2);
      equal(seen.filter((t) => t === "active").length, 2);
      equal(seen.filter((t) => t === "failed").length, 1);
      equal(seen.filter((t) => t === "idle").length, 1);
      await pool.close();
    },
  },
];
