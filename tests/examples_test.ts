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
