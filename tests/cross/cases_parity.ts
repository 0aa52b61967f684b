// Shared cases of what peers' users expect (issue 23): composition, async
// generator fan-out, and the other parity features. They run on every
// runtime like tests/cross/cases.ts; details are pinned in the unit tests
// (tests/compose_test.ts, tests/flatten_test.ts, …).
import { type Case, equal } from "./_check.ts";

export const cases: Case[] = [
  {
    name:
      "pipeline() composes pipelines among stages, keeping stage names unique",
    async run({ map, pipeline }) {
      const inc = pipeline(map((n: number) => n + 1, { name: "inc" }));
      const p = pipeline(inc, map((n: number) => n * 10), inc);
      equal(p.names, ["inc", "map#2", "inc#3"]);
      equal(await p.run([1, 2]).collect(), [21, 31]);
    },
  },
  {
    name: "flatten() reads an async generator's fan-out, in input order",
    async run({ flatten, map, pipeline }) {
      const p = pipeline(
        map(async function* (n: number) {
          for (let i = 0; i < n; i++) {
            await new Promise((r) => setTimeout(r, n === 2 ? 3 : 0));
            yield n * 10 + i;
          }
        }, { concurrency: 3 }),
        flatten<number>(),
      );
      equal(await p.run([2, 0, 1]).collect(), [20, 21, 10]);
    },
  },
  {
    name:
      "map() with key runs one call per key at a time, in input order, other keys in parallel",
    async run({ map, pipeline }) {
      const running = new Map<string, number>();
      let overlap = false;
      let peak = 0;
      const log: string[] = [];
      const p = pipeline(map(async (x: { k: string; n: number }) => {
        const now = (running.get(x.k) ?? 0) + 1;
        running.set(x.k, now);
        if (now > 1) overlap = true;
        peak = Math.max(peak, [...running.values()].reduce((a, b) => a + b));
        await new Promise((r) => setTimeout(r, x.k === "a" ? 4 : 1));
        running.set(x.k, running.get(x.k)! - 1);
        log.push(`${x.k}${x.n}`);
        return x.n;
      }, { concurrency: 3, key: (x) => x.k }));
      const items = [1, 2, 3].flatMap((n) =>
        ["a", "b", "c"].map((k) => ({ k, n }))
      );
      equal(await p.run(items).collect(), items.map((x) => x.n));
      equal(overlap, false, "no two calls of one key at once");
      equal(peak, 3, "three keys in parallel");
      for (const k of ["a", "b", "c"]) {
        equal(log.filter((x) => x[0] === k), [`${k}1`, `${k}2`, `${k}3`]);
      }
    },
  },
  {
    name:
      "asCompleted() takes promises of different types and yields each value as it settles",
    async run({ asCompleted }) {
      const late = new Promise<string>((r) => setTimeout(() => r("late"), 3));
      const out: (string | number | boolean)[] = [];
      for await (const v of asCompleted([late, Promise.resolve(7), true])) {
        out.push(v);
      }
      equal(out, [7, true, "late"]);
    },
  },
];
