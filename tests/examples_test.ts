import assert from "node:assert/strict";
import { main as retriesAndErrors } from "../examples/retries_and_errors.ts";
import { main as monitoring } from "../examples/monitoring.ts";

Deno.test("examples/retries_and_errors.ts retries, skips, substitutes and fails as the README says", async () => {
  const r = await retriesAndErrors();
  assert.equal(r.ok, 8); // 3, 6 and 9 succeed on their second try
  assert.deepEqual(r.skipped, [7]); // a 404 is not retried, then skipped
  assert.deepEqual(r.substituted.map((x) => x === null ? null : "item"), [
    "item",
    null,
    "item",
  ]);
  assert.equal(r.failedWith, "fetch #1: 404: no such item");
});

Deno.test("examples/monitoring.ts reports retries, progress lines and latency", async () => {
  const lines: string[] = [];
  const r = await monitoring((line) => lines.push(line));
  assert.equal(r.retries, 1);
  assert.equal(r.completed, 40);
  assert(r.p95 >= 10, `p95 ${r.p95}`);
  assert(lines.some((l) => l.startsWith("fetch 40/40")), lines.join("\n"));
  assert(lines.some((l) => l.startsWith("retrying item 3")));
});

Deno.test("examples/bulk_insert.ts saves 199 rows in 4 INSERTs and refuses the duplicate alone", async () => {
  const { main } = await import("../examples/bulk_insert.ts");
  const { saved, refused, statements } = await main();
  assert.equal(saved, 199);
  assert.deepEqual(refused, ["duplicate key: id 7"]);
  assert.equal(statements, 4);
});

Deno.test("examples/threads.ts gets the same results threaded, and the event loop keeps ticking", async () => {
  const { main } = await import("../examples/threads.ts");
  const lines: string[] = [];
  const { inline, threaded, completed } = await main((l) => lines.push(l));
  assert.deepEqual(
    threaded.results.map((r) => Number(r.slice(1, r.indexOf("=")))),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  );
  assert.deepEqual(threaded.results, inline.results);
  assert.equal(completed, 14); // 12 documents and 2 warm-up calls
  // Inline, each ~40 ms score blocks the timer; threaded, it keeps firing.
  assert(threaded.ticks > inline.ticks, `${threaded.ticks} > ${inline.ticks}`);
  assert.equal(lines.length, 5, lines.join("\n"));
  assert.match(lines[1], /^inline +\d+ ms · 10 ms timer ticked +\d+ times/);
  assert.match(lines[2], /^threads +\d+ ms · 10 ms timer ticked +\d+ times/);
  assert.match(lines[3], /^same 12 results in the same order: yes/);
  assert.equal(
    lines[4],
    "thread pool: 14 calls completed, 0 failed, 0 restarts",
  );
});

Deno.test("examples/batcher_cache.ts loads 7 users in one query for 8 calls, answers managers from primed entries, reloads a cleared user", async () => {
  const { main } = await import("../examples/batcher_cache.ts");
  const lines: string[] = [];
  const r = await main((line) => lines.push(line));
  assert.deepEqual(r.queries, [[7, 4, 5, 6, 8, 9, 10], [4], [99]]);
  assert.equal(r.managers[0], "user 4 → user 2");
  assert.equal(r.managers.length, 7);
  assert.equal(r.cacheHits, 7); // the 7 managers, all primed
  assert.equal(r.deduped, 2); // user 7 twice, user 99 twice
  assert.equal(r.renamed, "user four");
  assert.equal(r.missing, "no user 99");
  assert.equal(lines.length, 10, lines.join("\n"));
});
