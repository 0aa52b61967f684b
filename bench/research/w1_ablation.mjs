#!/usr/bin/env node
// W1 taken apart: where the time of `for await` and `collect()` over a sluice
// flow goes, and how much of it could be removed at all.
//
//   node bench/research/w1_ablation.mjs [--runtime node|deno] [--rounds 4]
//     [--iters 15] [--n 100000]
//
// Two bundles of mod.ts are built with esbuild: sluice as it is, and an
// "ablated" sluice with every per-item cost removed that a change could remove
// (each removal below breaks a documented behaviour, so none can ship):
// - no latency sampling (`stats().latency`, `queueWait` stay empty);
// - one `ctx` object shared by every call of a run (the API gives each call its
//   own `ctx`: the TaskContext example keeps them);
// - the source is not pumped from a worker while the budget is spent.
// Each round runs every bundle in a fresh process; inside it, every case runs
// once per iteration, interleaved, and each figure is a ratio to the floors of
// the same iteration (paired), so drifts of a shared machine cancel out.
// Cases: the bare async generator (the W1 reference), the sequential loop into
// an array, a trivial async iterator that hands out the array's items as
// resolved promises (what the `for await` protocol costs alone), a minimal
// ordered pool (16 workers, a bounded reorder window of 1,040 items, a fresh
// `ctx` object per call, results into an array in input order: the least any
// `collect()` with sluice's ordering and read-ahead bound must do, without
// stages, stats or events), the two fastest materialising competitors of the
// W1 table (async's `mapLimit`, and 16 hand-written workers sharing an index
// into a presized array, also with a fresh `ctx` object per call as sluice's
// calls get), and sluice `for await` / `collect()` in both orders.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { args, median } from "../compare/common.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

/** The removals: [file, text in the source, replacement]. */
const ABLATIONS = [
  [
    "lib/_scheduler.ts",
    "if (this.stats.timeAll || sampled(index)) {",
    "if (false) {",
  ],
  [
    "lib/_work_stage.ts",
    "const ctx = this.#ctx(t, workerId, signal);",
    "const ctx = (this as any).__ctx ??= this.#ctx(t, workerId, signal);",
  ],
  [
    "lib/_scheduler.ts",
    "  #full = false;",
    "  #full = false;\n  get full(): boolean {\n    return this.#full;\n  }",
  ],
  [
    "lib/_work_stage.ts",
    "      if (next === undefined) this.#release(workerId);\n      run.pump();",
    "      if (next === undefined) this.#release(workerId);\n      if (!(run as any).full) run.pump();",
  ],
];

async function child(bundle, n, iters) {
  const L = await import(bundle);
  const { default: async } = await import("async");
  const items = Array.from({ length: n }, (_, i) => i);
  // deno-lint-ignore require-await
  const fn = async (x) => x * 2;
  const sum = async (iterable) => {
    let s = 0;
    for await (const v of iterable) s += v;
    return s;
  };
  const cases = {
    generator: () => {
      async function* g() {
        for (const x of items) yield await fn(x);
      }
      return sum(g());
    },
    "array loop": async () => {
      const out = [];
      for (const x of items) out.push(await fn(x));
      return out.reduce((a, b) => a + b, 0);
    },
    "minimal ordered pool": () => minimalPool(items, fn, 16, 1024 + 16),
    "async mapLimit": async () =>
      (await async.mapLimit(items, 16, fn)).reduce((a, b) => a + b, 0),
    "index pool": () => indexPool(items, fn, false),
    "index pool, ctx per call": () => indexPool(items, fn, true),
    "index pool, ctx and token per call": () =>
      indexPool(items, fn, true, true),
    "protocol only": () => {
      let i = 0;
      return sum({
        [Symbol.asyncIterator]() {
          return this;
        },
        next: () =>
          Promise.resolve(
            i < n
              ? { done: false, value: 2 * items[i++] }
              : { done: true, value: undefined },
          ),
      });
    },
  };
  for (const order of ["input", "completion"]) {
    const run = () =>
      L.pipeline(L.map(fn, { concurrency: 16 })).run(items, { order });
    cases[`for await, ${order}`] = () => sum(run());
    cases[`collect(), ${order}`] = async () =>
      (await run().collect()).reduce((a, b) => a + b, 0);
  }
  const want = n * (n - 1);
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < iters + 5; i++) {
    for (const [k, f] of Object.entries(cases)) {
      const t0 = performance.now();
      const s = await f();
      const ms = performance.now() - t0;
      if (s !== want) throw new Error(`${k}: wrong sum ${s}`);
      if (i >= 5) times[k].push(ms); // 5 warm-up rounds
    }
  }
  const out = {};
  for (const [k, v] of Object.entries(times)) {
    out[k] = {
      ms: median(v),
      gen: median(v.map((x, i) => x / times.generator[i])),
      arr: median(v.map((x, i) => x / times["array loop"][i])),
    };
  }
  const version = "Deno" in globalThis
    ? `Deno ${globalThis.Deno.version.deno} (V8 ${globalThis.Deno.version.v8})`
    : `Node ${process.version} (V8 ${process.versions.v8})`;
  console.log(JSON.stringify({ version, cases: out }));
}

/** An object with the fields of sluice's per-item token (lib/_scheduler.ts). */
class Token {
  constructor(value, index) {
    this.value = value;
    this.index = index;
    this.id = index;
    this.stage = 0;
    this.weight = 1;
    this.prev = null;
    this.next = null;
    this.times = null;
    this.step = 0;
    this.partial = undefined;
    this.attempt = 0;
  }
}

/**
 * The hand-written pool of the W1 table: 16 workers sharing an index, writing
 * `out[i] = await fn(items[i])` into a presized array. With `ctx`, each call
 * also gets a fresh context object like sluice's (`fn(item, ctx)` is the
 * API's call); with `token`, each item also gets a fresh object shaped like
 * sluice's token, which carries it between stages: what a scheduler that
 * allocates a token per item pays (sluice reuses the tokens of results
 * instead: `#recycle` in lib/_scheduler.ts).
 */
async function indexPool(items, fn, ctx, token = false) {
  const n = items.length;
  const out = new Array(n);
  const signal = new AbortController().signal;
  let next = 0;
  const worker = async (workerId) => {
    while (next < n) {
      const i = next++;
      if (token) {
        const t = new Token(items[i], i);
        t.value = await fn(t.value, {
          signal,
          workerId,
          itemId: t.id,
          index: t.index,
          attempt: 1,
          stage: "map",
          context: undefined,
        });
        out[t.index] = t.value;
        continue;
      }
      out[i] = await (ctx
        ? fn(items[i], {
          signal,
          workerId,
          itemId: i,
          index: i,
          attempt: 1,
          stage: "map",
          context: undefined,
        })
        : fn(items[i]));
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
  return out.reduce((a, b) => a + b, 0);
}

/**
 * 16 workers take the next index while fewer than `window` items are read and
 * not yet out; a result waits in a ring until every earlier one is out, then
 * goes to the output array. Each call gets its own `ctx`, with the run's
 * signal. Returns the sum of the output, after checking its order.
 */
function minimalPool(items, fn, concurrency, window) {
  return new Promise((resolve) => {
    const n = items.length;
    const controller = new AbortController();
    const out = [];
    const ring = new Array(window);
    const has = new Uint8Array(window);
    const parked = [];
    let next = 0;
    let head = 0;
    let active = 0;
    const flush = () => {
      while (head < next && has[head % window] === 1) {
        const k = head % window;
        has[k] = 0;
        out.push(ring[k]);
        ring[k] = undefined;
        head++;
      }
      while (parked.length > 0 && next - head < window) parked.pop()();
    };
    const worker = async () => {
      active++;
      while (next < n) {
        if (next - head >= window) {
          await new Promise((wake) => parked.push(wake));
          continue;
        }
        const i = next++;
        const v = await fn(items[i], {
          signal: controller.signal,
          workerId: 0,
          itemId: i,
          index: i,
          attempt: 1,
          stage: "map",
          context: undefined,
        });
        const k = i % window;
        ring[k] = v;
        has[k] = 1;
        if (i === head) flush();
      }
      if (--active === 0) {
        let s = 0;
        for (let i = 0; i < out.length; i++) {
          if (out[i] !== 2 * items[i]) throw new Error(`out of order at ${i}`);
          s += out[i];
        }
        resolve(s);
      }
    };
    for (let c = 0; c < concurrency; c++) worker();
  });
}

async function build() {
  const esbuild = await import("esbuild");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-ablation-"));
  const copy = path.join(dir, "src");
  fs.mkdirSync(copy);
  fs.copyFileSync(path.join(root, "mod.ts"), path.join(copy, "mod.ts"));
  fs.cpSync(path.join(root, "lib"), path.join(copy, "lib"), {
    recursive: true,
  });
  for (const [file, from, to] of ABLATIONS) {
    const f = path.join(copy, file);
    const text = fs.readFileSync(f, "utf8");
    if (!text.includes(from)) {
      throw new Error(`${file} no longer contains ${JSON.stringify(from)}`);
    }
    fs.writeFileSync(f, text.replace(from, to));
  }
  const bundles = {};
  for (
    const [name, entry] of [
      ["sluice", path.join(root, "mod.ts")],
      ["ablated", path.join(copy, "mod.ts")],
    ]
  ) {
    const outfile = path.join(dir, `${name}.mjs`);
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      format: "esm",
      outfile,
      logLevel: "warning",
    });
    bundles[name] = pathToFileURL(outfile).href;
  }
  return { dir, bundles };
}

async function main() {
  const rounds = Number(args.rounds ?? 4);
  const iters = Number(args.iters ?? 15);
  const n = Number(args.n ?? 100_000);
  const runtime = String(args.runtime ?? "node");
  if (runtime !== "node" && runtime !== "deno") {
    throw new RangeError(`--runtime must be node or deno: got ${runtime}`);
  }
  const command = runtime === "node"
    ? [process.execPath]
    : [path.join(root, "node_modules/.bin/deno"), "run", "-A"];
  const { dir, bundles } = await build();
  const acc = {};
  let version = "";
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [name, url] of Object.entries(bundles)) {
        const p = spawnSync(command[0], [
          ...command.slice(1),
          fileURLToPath(import.meta.url),
          "--child",
          url,
          "--n",
          String(n),
          "--iters",
          String(iters),
        ], { encoding: "utf8", env: { ...process.env, RUST_BACKTRACE: "0" } });
        if (p.status !== 0) throw new Error(p.stderr);
        const reported = JSON.parse(p.stdout.trim().split("\n").pop());
        version = reported.version;
        const cases = reported.cases;
        for (const [k, v] of Object.entries(cases)) {
          const key = k.startsWith("for") || k.startsWith("collect")
            ? `${name}: ${k}`
            : k;
          (acc[key] ??= []).push(v);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `${version}, n = ${n}, ${rounds} rounds × ${iters} paired iterations\n`,
  );
  console.log("| case | median ms | × generator | × array loop |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [k, xs] of Object.entries(acc)) {
    const f = (key, d) => median(xs.map((x) => x[key])).toFixed(d);
    console.log(`| ${k} | ${f("ms", 2)} | ${f("gen", 3)}× | ${f("arr", 3)}× |`);
  }
}

if (args.child) {
  await child(String(args.child), Number(args.n), Number(args.iters));
} else {
  await main();
}
