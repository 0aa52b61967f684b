#!/usr/bin/env node
// Is `collect()` (W1's shape: one map, concurrency 16, 100k items) slower at
// one commit than at another? One process varies by up to 70 % (V8's tiering
// is bimodal), so this runs many fresh processes per commit, alternated, and
// compares the medians of their medians.
//
//   node bench/research/collect_processes.mjs --revs 4aa91ac,HEAD
//     [--processes 12] [--order completion|input] [--runtime node|deno]
//     [--consumer collect|for-await]
//
// `.` as a rev is the working tree (uncommitted changes included).
// Each commit's mod.ts is bundled with esbuild (from `git archive`); each
// process runs 60 collect() calls and reports the median of the last 50.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { args, median } from "../compare/common.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

if (args.child) {
  const L = await import(String(args.child));
  const order = String(args.order ?? "completion");
  const N = 100_000;
  const items = Array.from({ length: N }, (_, i) => i);
  // deno-lint-ignore require-await
  const fn = async (x) => x + 1; // W1's task: async, settles at once
  const times = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    const flow = L.pipeline(L.map(fn, { concurrency: 16 })).run(items, {
      order,
    });
    let count = 0;
    if (args.consumer === "for-await") {
      for await (const _ of flow) count++;
    } else count = (await flow.collect()).length;
    if (count !== N) throw new Error(`got ${count} results`);
    if (i >= 10) times.push(performance.now() - t0);
  }
  console.log(median(times));
  process.exit(0);
}

const revs = String(args.revs ?? "HEAD~1,HEAD").split(",");
const processes = Number(args.processes ?? 12);
const runtime = String(args.runtime ?? "node");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-collect-"));
const esbuild = await import("esbuild");
const bundles = [];
for (const rev of revs) {
  const src = path.join(dir, rev.replace(/\W/g, "_"));
  fs.mkdirSync(src);
  if (rev === ".") { // the working tree, uncommitted changes included
    fs.cpSync(path.join(root, "lib"), path.join(src, "lib"), {
      recursive: true,
    });
    fs.copyFileSync(path.join(root, "mod.ts"), path.join(src, "mod.ts"));
  } else {
    const tar = execFileSync("git", ["archive", rev, "lib", "mod.ts"], {
      cwd: root,
    });
    execFileSync("tar", ["-x", "-C", src], { input: tar });
  }
  const outfile = `${src}.mjs`;
  await esbuild.build({
    entryPoints: [path.join(src, "mod.ts")],
    bundle: true,
    format: "esm",
    outfile,
    logLevel: "warning",
  });
  bundles.push(outfile);
}
const self = fileURLToPath(import.meta.url);
const cmd = runtime === "deno"
  ? [path.join(root, "node_modules/.bin/deno"), ["run", "-A", self]]
  : [process.execPath, [self]];
const results = bundles.map(() => []);
for (let p = 0; p < processes; p++) {
  for (let b = 0; b < bundles.length; b++) {
    const r = spawnSync(cmd[0], [
      ...cmd[1],
      "--child",
      bundles[b],
      "--order",
      String(args.order ?? "completion"),
      "--consumer",
      String(args.consumer ?? "collect"),
    ], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    results[b].push(Number(r.stdout.trim()));
  }
}
const base = median(results[0]);
for (let b = 0; b < bundles.length; b++) {
  const m = median(results[b]);
  const min = Math.min(...results[b]);
  console.log(
    `${revs[b]}: median ${m.toFixed(2)} ms, min ${min.toFixed(2)} ms, ` +
      `${(m / base).toFixed(3)}× ${revs[0]}`,
  );
}
fs.rmSync(dir, { recursive: true, force: true });
