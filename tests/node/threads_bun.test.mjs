// ThreadPool on Bun: runs tests/threads/bun_run.mjs under Bun (the npm `bun`
// package), which runs the shared cases (tests/threads/cases.mjs: order,
// errors, dead threads, transfer, a busy loop stopped by abort and by
// timeoutMs, close) on Bun's Workers against npm/, imported and required, and
// reports each case as a test here. The Bun process must exit on its own:
// a thread left running would make spawnSync time out.
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const bun = join(helpers.root, "node_modules/.bin/bun");
if (!existsSync(bun)) {
  throw new Error("Bun is missing (node_modules/.bin/bun): run `npm ci` (the bun package is a devDependency)");
}
const r = spawnSync(bun, ["run", "tests/threads/bun_run.mjs"], {
  cwd: helpers.root,
  encoding: "utf8",
  timeout: 120_000,
  maxBuffer: 64 * 1024 * 1024,
});
if (r.error) throw new Error(`bun did not exit: ${r.error}\n${r.stdout}\n${r.stderr}`);
if (r.status !== 0) throw new Error(`bun exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
const report = JSON.parse(r.stdout.trim().split("\n").at(-1));

test(`bun ${report.bun}: "sluice/threads" resolves to npm/esm/threads.js (import) and npm/script/threads.js (require)`, () => {
  if (!report.resolved.import.endsWith("/npm/esm/threads.js")) throw new Error(report.resolved.import);
  if (!report.resolved.require.endsWith("/npm/script/threads.js")) throw new Error(report.resolved.require);
});

for (const result of report.results) {
  // A case with a known Bun bug runs as a TODO test: reported, not failing.
  const options = result.todo ? { todo: result.todo } : {};
  test(`bun ${result.how}: ${result.name}`, options, () => helpers.assertCaseResult(result));
}
