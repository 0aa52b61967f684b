// What the workerd tests share: Miniflare (from npm, a clear error when it is
// missing) and a test worker bundled with esbuild against the built package
// (npm/), as a Worker project would bundle it.
import { build } from "esbuild";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();

let loaded;
try {
  loaded = await import("miniflare");
} catch (error) {
  throw new Error(`miniflare (workerd) is missing: run \`npm ci\` (${error})`);
}

/** Miniflare's class. */
export const Miniflare = loaded.Miniflare;

/** `entry` (a path from the repository root) bundled for workerd: its text. */
export async function bundleWorker(entry) {
  const bundled = await build({
    absWorkingDir: helpers.root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    logLevel: "warning",
  });
  return bundled.outputFiles[0].text;
}
