// Shared by the Node adapters (tests/node/*.test.*): bundles the cross-runtime
// cases (tests/cross/all.ts, TypeScript) with esbuild for runtimes that cannot
// run TypeScript (Node 20, workerd, Chromium). The bundle holds the cases
// only: they receive the library as an argument, so every runtime tests the
// built npm package (`sluice`, linked to npm/ by `npm run build`).
"use strict";
const { buildSync } = require("esbuild");
const { existsSync, mkdtempSync, rmSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join, resolve } = require("node:path");

const root = resolve(__dirname, "../..");

/**
 * Bundles tests/cross/all.ts (or `entry`) as `format` ("esm" | "cjs") and
 * returns `{ file, code, cleanup }`; the file lives in a fresh temp folder.
 */
function bundleCases(format, entry = "tests/cross/all.ts") {
  const dir = mkdtempSync(join(tmpdir(), "sluice-cases-"));
  const file = join(dir, format === "esm" ? "cases.mjs" : "cases.cjs");
  buildSync({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    format,
    platform: "neutral",
    target: "es2022",
    logLevel: "warning",
  });
  const code = require("node:fs").readFileSync(file, "utf8");
  return { file, code, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Fails loudly unless the npm package has been built and linked. */
function requireBuiltPackage() {
  const link = join(root, "tests/node_modules/sluice/package.json");
  if (!existsSync(link)) {
    throw new Error(
      "npm/ is not built (or tests/node_modules/sluice is not linked): run `npm run build` first",
    );
  }
}

/** Reports one case result (from any runtime) as a node:test failure or pass. */
function assertCaseResult(result) {
  if (!result) throw new Error("the case reported no result");
  if (!result.ok) {
    const error = new Error(result.error ?? "failed");
    error.stack = result.error;
    throw error;
  }
}

module.exports = { root, bundleCases, requireBuiltPackage, assertCaseResult };
