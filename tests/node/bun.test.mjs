// Bun stage: runs tests/bun/run.ts under Bun (the npm `bun` package) and
// reports each shared case, loaded through import and through require, as a
// test here. Fails loudly when Bun is missing.
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
const r = spawnSync(bun, ["run", "tests/bun/run.ts"], {
  cwd: helpers.root,
  encoding: "utf8",
  timeout: 120_000,
  maxBuffer: 64 * 1024 * 1024,
});
if (r.error) throw r.error;
if (r.status !== 0) throw new Error(`bun exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
const report = JSON.parse(r.stdout.trim().split("\n").at(-1));

test(`bun ${report.bun}: "sluice" resolves to npm/esm (import) and npm/script (require)`, () => {
  if (!report.resolved.import.endsWith("/npm/esm/mod.js")) throw new Error(report.resolved.import);
  if (!report.resolved.require.endsWith("/npm/script/mod.js")) throw new Error(report.resolved.require);
});

for (const result of report.results) {
  test(`bun ${result.how}: ${result.name}`, () => helpers.assertCaseResult(result));
}
