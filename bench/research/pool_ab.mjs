#!/usr/bin/env node
// What does the plain `Pool.submit()` path cost at one commit against
// another? bench/pool_bench.ts's shape (100,000 trivial async tasks,
// concurrency 16, all submitted at once, awaited with Promise.all), with
// both versions imported into the same process and run alternately, so JIT,
// GC and machine noise hit both alike; reports the median of the per-round
// ratios (B / A, under 1 when B is faster).
//
//   node bench/research/pool_ab.mjs [--a 65d1d6b] [--b WORKTREE|<rev>|<dir>]
//     [--rounds 40] [--warmup 6]
//   RUST_BACKTRACE=0 node_modules/.bin/deno run -A bench/research/pool_ab.mjs …
//
// Each version's mod.ts is bundled with esbuild (from `git archive`, from
// the working tree for WORKTREE, or from a directory holding a copy of mod.ts
// and lib/, for trying a variant) into a temporary directory.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { args, median } from "../compare/common.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const revA = String(args.a ?? "65d1d6b");
const revB = String(args.b ?? "WORKTREE");
const rounds = Number(args.rounds ?? 40);
const warmup = Number(args.warmup ?? 6);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-pool-ab-"));
const esbuild = await import("esbuild");

/** Bundles `rev`'s mod.ts (or the working tree's); returns its file URL. */
async function bundle(rev, name) {
  let entry = path.join(root, "mod.ts");
  if (fs.existsSync(path.join(rev, "mod.ts"))) {
    entry = path.join(path.resolve(rev), "mod.ts");
  } else if (rev !== "WORKTREE") {
    const src = path.join(dir, name);
    fs.mkdirSync(src);
    const tar = execFileSync("git", ["archive", rev, "lib", "mod.ts"], {
      cwd: root,
    });
    execFileSync("tar", ["-x", "-C", src], { input: tar });
    entry = path.join(src, "mod.ts");
  }
  const outfile = path.join(dir, `${name}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    outfile,
    logLevel: "warning",
  });
  return pathToFileURL(outfile).href;
}

const A = await import(await bundle(revA, "a"));
const B = await import(await bundle(revB, "b"));
await esbuild.stop?.();

const N = 100_000;
const CONCURRENCY = 16;
const items = Array.from({ length: N }, (_, i) => i);
// deno-lint-ignore require-await
const fn = async (x) => x * 2;

async function once(L) {
  const t0 = performance.now();
  const pool = new L.Pool({ concurrency: CONCURRENCY });
  const out = await Promise.all(items.map((x) => pool.submit(fn, x)));
  await pool.close();
  const ms = performance.now() - t0;
  if (out.length !== N || out[N - 1] !== 2 * (N - 1)) {
    throw new Error("wrong results");
  }
  return ms;
}

const times = { a: [], b: [] };
const ratios = [];
for (let r = 0; r < warmup + rounds; r++) {
  // Who runs first alternates.
  const [ta, tb] = r % 2 === 0
    ? [await once(A), await once(B)]
    : [await once(B), await once(A)].reverse();
  if (r < warmup) continue;
  times.a.push(ta);
  times.b.push(tb);
  ratios.push(tb / ta);
}
const runtime = "Deno" in globalThis ? "deno" : "node";
const fmt = (x) => x.toFixed(2);
console.log(
  `${runtime}, ${rounds} rounds: A ${revA} median ${
    fmt(median(times.a))
  } ms, ` +
    `B ${revB} median ${fmt(median(times.b))} ms, ` +
    `median ratio B/A ${median(ratios).toFixed(4)} ` +
    `(${((median(ratios) - 1) * 100).toFixed(1)} %), ` +
    `ratio of medians ${(median(times.b) / median(times.a)).toFixed(4)}`,
);
fs.rmSync(dir, { recursive: true, force: true });
