#!/usr/bin/env node
// sluice against its peers: every workload runs every library in a fresh
// child process, interleaved (A B C … A B C …) over several repetitions, under
// Node (against the built npm package) and Deno (against mod.ts). Each child
// checks its own answer (count, checksum, order where promised); a wrong
// answer gives no figure. Prints markdown tables (medians, spread, ratios to
// the floor measured in the same run) and the targets, and writes them with
// the raw data to bench/compare/.results/.
//
//   npm run bench:compare                     # everything (≈ 40 min)
//   npm run bench:compare -- --quick          # a small version (< 2 min)
//   node bench/compare/run.mjs --only W1,W4 --runtime node --reps 3
//   node bench/compare/run.mjs --cases sluice,loop,generator   # id filter
//
// Options: --quick, --reps N (default 5; W1 1M and W3 use at most 3),
// --only W1,…, --runtime node,deno, --cases a,b (substrings of case ids; the
// floors are always kept), --timeout S (per child, default 90, quick 30),
// --out DIR (default bench/compare/.results), --report FILE.json (print the
// report of a saved run again), --build (build npm/ first with
// scripts/build_npm.ts; without it a missing or stale npm/ is replaced by a
// private esbuild bundle of mod.ts, and the report says which was used).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { args, median, RESULT_MARK } from "./common.mjs";
import { heavyTailDurations, idealGreedy, lowerBound } from "./durations.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const quick = !!args.quick;
const reps = Number(args.reps ?? (quick ? 1 : 5));
const timeoutMs = Number(args.timeout ?? (quick ? 30 : 90)) * 1000;
const outDir = path.resolve(root, args.out ?? "bench/compare/.results");
const runtimes = String(args.runtime ?? "node,deno").split(",");
const only = args.only ? String(args.only).toUpperCase().split(",") : null;
const caseFilter = args.cases ? String(args.cases).split(",") : null;
const DENO = path.join(root, "node_modules/.bin/deno");

const PEERS = [
  "p-map",
  "p-queue",
  "p-limit",
  "async",
  "fastq",
  "rxjs",
  "effect",
  "streaming-iterables",
  "dataloader",
  "esbuild",
  "piscina",
  "tinypool",
  "poolifier-web-worker",
];

// ---- what runs ------------------------------------------------------------

const W2_N = quick ? 100 : 400;
// Timed workloads: untimed warm-up iterations first (the JIT needs 10–20
// runs of a fast case to settle), then timed ones, each capped by a time
// budget so that slow libraries stop early (at least one timed iteration).
const QUICK_ITERS = { warmup: 2, iters: 3, budget: 800 };
const timed = (n, warmup, iters, budget) =>
  quick ? { n: n / 5, ...QUICK_ITERS } : { n, warmup, iters, budget };
const WORKLOADS = [
  {
    key: "W1",
    file: "w1_overhead.mjs",
    runs: quick ? [timed(100_000)] : [
      timed(100_000, 15, 15, 6000),
      { ...timed(1_000_000, 2, 3, 12000), maxReps: 3 },
    ],
  },
  { key: "W2", file: "w2_heavy_tail.mjs", runs: [{ n: W2_N }] },
  {
    key: "W3",
    file: "w3_backpressure.mjs",
    runs: [{ n: quick ? 50_000 : 1_000_000, maxReps: 3 }],
  },
  { key: "W4", file: "w4_batching.mjs", runs: [timed(100_000, 20, 20, 4000)] },
  { key: "W5", file: "w5_stages.mjs", runs: [timed(100_000, 10, 10, 5000)] },
  {
    key: "W6",
    file: "w6_coalescing.mjs",
    runs: [timed(100_000, 10, 10, 5000)],
  },
  // W7 sizes its own measurements (48 CPU tasks, 20 aborts…); n is the
  // number of tiny calls. Its children get the threads module (--threads).
  {
    key: "W7",
    file: "w7_threads.mjs",
    runs: [{ n: quick ? 10_000 : 100_000 }],
  },
].filter((w) => only === null || only.includes(w.key));

// ---- the sluice module each runtime loads ----------------------------------

/** Newest modification time of the sluice sources (mod.ts, lib/). */
function sourceMtime() {
  let t = fs.statSync(path.join(root, "mod.ts")).mtimeMs;
  for (const f of fs.readdirSync(path.join(root, "lib"))) {
    t = Math.max(t, fs.statSync(path.join(root, "lib", f)).mtimeMs);
  }
  return t;
}

/**
 * Node loads the built npm package (npm/, the "import" entry of its
 * exports) when it is there and newer than the sources; otherwise a private
 * ESM bundle of mod.ts built here with esbuild (what the npm build does).
 */
function nodeSluice() {
  if (args.build && fs.existsSync(path.join(root, "scripts/build_npm.ts"))) {
    console.error("building npm/ (deno run -A scripts/build_npm.ts) …");
    const b = spawnSync(DENO, ["run", "-A", "scripts/build_npm.ts"], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
    });
    if (b.status !== 0) {
      console.error(
        `the npm build failed: ${
          `${b.stderr}${b.stdout}`.trim().split("\n").slice(-3).join(" | ")
        }`,
      );
    }
  }
  const pkgFile = path.join(root, "npm/package.json");
  if (fs.existsSync(pkgFile)) {
    const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"));
    const dot = pkg.exports?.["."] ?? pkg.exports;
    let entry = dot?.import ?? pkg.module ?? pkg.main;
    if (typeof entry === "object") entry = entry.default;
    const file = entry && path.join(root, "npm", entry);
    if (file && fs.existsSync(file)) {
      if (fs.statSync(file).mtimeMs >= sourceMtime()) {
        return { file, how: `the npm package (npm/${path.normalize(entry)})` };
      }
      console.error(
        `npm/ is older than lib/ or mod.ts: using a fresh bundle instead (rebuild it with \`deno run -A scripts/build_npm.ts\`)`,
      );
    }
  }
  return bundle("mod.ts", "sluice.mjs");
}

/** A private esbuild ESM bundle of `entry` in bench/compare/.build/. */
function bundle(entry, name) {
  const file = path.join(here, ".build", name);
  const r = spawnSync(
    path.join(root, "node_modules/.bin/esbuild"),
    [
      entry,
      "--bundle",
      "--format=esm",
      "--target=es2022",
      `--outfile=${file}`,
      "--log-level=warning",
    ],
    { cwd: root, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`esbuild failed: ${r.stderr}`);
  return {
    file,
    how: `an esbuild ESM bundle of ${entry} (bench/compare/.build/${name})`,
  };
}

/**
 * The threads entry (W7) for Node: npm/esm/threads.js when it is newer than
 * threads.ts and lib/threads/, else a private esbuild bundle of threads.ts.
 */
function nodeThreads() {
  const built = path.join(root, "npm/esm/threads.js");
  const dir = path.join(root, "lib/threads");
  let t = Math.max(
    sourceMtime(),
    fs.statSync(path.join(root, "threads.ts")).mtimeMs,
  );
  for (const f of fs.readdirSync(dir)) {
    t = Math.max(t, fs.statSync(path.join(dir, f)).mtimeMs);
  }
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= t) {
    return { file: built, how: "the npm package (npm/esm/threads.js)" };
  }
  return bundle("threads.ts", "threads.mjs");
}

// ---- children ---------------------------------------------------------------

function command(runtime, file, extra) {
  const script = path.join(here, "workloads", file);
  if (runtime === "node") {
    return ["node", ["--expose-gc", script, ...extra]];
  }
  return [DENO, ["run", "-A", "--v8-flags=--expose-gc", script, ...extra]];
}

function spawnChild(runtime, file, extra) {
  const [cmd, argv] = command(runtime, file, extra);
  const r = spawnSync(cmd, argv, {
    cwd: root,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
  });
  if (r.error?.code === "ETIMEDOUT" || r.signal === "SIGTERM") {
    return {
      ok: false,
      timeout: true,
      error: `timed out after ${timeoutMs / 1000} s`,
    };
  }
  const line = (r.stdout ?? "").split("\n").find((l) =>
    l.startsWith(RESULT_MARK)
  );
  if (line === undefined) {
    const tail = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").slice(
      -5,
    )
      .join(" | ");
    return { ok: false, error: `no result (exit ${r.status}): ${tail}` };
  }
  return JSON.parse(line.slice(RESULT_MARK.length));
}

function runParams(run) {
  const out = ["--n", String(run.n)];
  for (const k of ["warmup", "iters", "budget"]) {
    if (run[k] !== undefined) out.push(`--${k}`, String(run[k]));
  }
  if (quick) out.push("--quick");
  return out;
}

// ---- environment --------------------------------------------------------------

function version(pkg) {
  try {
    const file = path.join(root, "node_modules", pkg, "package.json");
    return JSON.parse(fs.readFileSync(file, "utf8")).version;
  } catch {
    return "missing";
  }
}

function git(argv) {
  const r = spawnSync("git", argv, { cwd: root, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "?";
}

function environment() {
  const deno = spawnSync(DENO, ["--version"], { encoding: "utf8" });
  const cpus = os.cpus();
  const dirty = git(["status", "--porcelain", "--", "lib", "mod.ts"]) !== "";
  return {
    date: new Date().toISOString(),
    cpu: `${cpus.length} × ${cpus[0]?.model ?? "?"}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    deno: (deno.stdout ?? "").split("\n").slice(0, 2).join(", ").trim(),
    sluice: `${git(["rev-parse", "--short", "HEAD"])}${
      dirty ? " + uncommitted changes in lib/ or mod.ts" : ""
    }`,
    peers: Object.fromEntries(PEERS.map((p) => [p, version(p)])),
    loadStart: os.loadavg().map((x) => x.toFixed(2)).join(" "),
  };
}

// ---- the run -------------------------------------------------------------------

function main() {
  fs.mkdirSync(outDir, { recursive: true });
  if (typeof args.report === "string") {
    // Re-generate the report of a saved run: --report <file.json>
    const saved = JSON.parse(fs.readFileSync(args.report, "utf8"));
    console.log(report(saved.env, saved.sluice, saved.results, saved.options));
    return;
  }
  const env = environment();
  const sluice = {
    node: nodeSluice(),
    deno: {
      file: path.join(root, "mod.ts"),
      how: "mod.ts (TypeScript source)",
    },
  };
  if (WORKLOADS.some((w) => w.key === "W7")) {
    sluice.node.threads = nodeThreads();
    sluice.deno.threads = {
      file: path.join(root, "threads.ts"),
      how: "threads.ts (TypeScript source)",
    };
    console.error(
      `sluice/threads for Node: ${sluice.node.threads.how}; for Deno: ${sluice.deno.threads.how}`,
    );
  }
  console.error(
    `sluice for Node: ${sluice.node.how}; for Deno: ${sluice.deno.how}`,
  );
  const results = []; // one entry per (runtime, workload, run)
  const t0 = Date.now();
  for (const runtime of runtimes) {
    const sluiceUrl = pathToFileURL(sluice[runtime].file).href;
    const threads = sluice[runtime].threads;
    const threadsArgs = threads
      ? ["--threads", pathToFileURL(threads.file).href]
      : [];
    for (const w of WORKLOADS) {
      for (const run of w.runs) {
        const listed = spawnChild(runtime, w.file, ["--list"]);
        if (!Array.isArray(listed)) {
          throw new Error(`cannot list ${w.file}: ${listed.error}`);
        }
        const cases = listed.filter((c) =>
          (!quick || c.only !== "full") &&
          (caseFilter === null || c.role === "floor" ||
            c.role === "reference" ||
            caseFilter.some((f) => c.id.includes(f)))
        );
        const entry = {
          runtime,
          workload: w.key,
          n: run.n,
          cases: cases.map((c) => ({ ...c, runs: [] })),
        };
        results.push(entry);
        const n = Math.min(reps, run.maxReps ?? Infinity);
        for (let rep = 0; rep < n; rep++) {
          for (const c of entry.cases) {
            if (c.runs.some((r) => r.timeout)) continue; // too slow: once is enough
            const extra = [
              "--case",
              c.id,
              "--sluice",
              sluiceUrl,
              ...(w.key === "W7" ? threadsArgs : []),
              ...runParams(run),
            ];
            const r = spawnChild(runtime, w.file, extra);
            c.runs.push(r);
            const fig = r.ok ? `${r.ms.toFixed(2)} ms` : `FAILED: ${r.error}`;
            console.error(
              `[${
                ((Date.now() - t0) / 1000).toFixed(0)
              }s] ${runtime} ${w.key} n=${run.n} rep ${
                rep + 1
              }/${n} ${c.id}: ${fig}`.slice(0, 300),
            );
          }
        }
      }
    }
  }
  env.loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  env.minutes = ((Date.now() - t0) / 60000).toFixed(1);
  const stamp = env.date.replace(/[:.]/g, "-");
  const options = { quick, reps };
  fs.writeFileSync(
    path.join(outDir, `${stamp}.json`),
    JSON.stringify({ env, sluice, results, options }, null, 1),
  );
  const md = report(env, sluice, results, options);
  fs.writeFileSync(path.join(outDir, `${stamp}.md`), md);
  fs.writeFileSync(path.join(outDir, "latest.md"), md);
  console.log(md);
  console.error(`written to ${path.relative(root, outDir)}/${stamp}.{md,json}`);
}

// ---- summaries -------------------------------------------------------------------

/** Median and spread of one metric over a case's good runs. */
function stat(c, key = "ms") {
  if (c === undefined) return null;
  const xs = c.runs.filter((r) => r.ok && r[key] !== undefined).map((r) =>
    r[key]
  );
  if (xs.length === 0) return null;
  return {
    med: median(xs),
    min: Math.min(...xs),
    max: Math.max(...xs),
    n: xs.length,
  };
}

/** Why a case has no figure (a wrong answer, a timeout, a crash), or null. */
function failure(c) {
  if (c === undefined) return "not run";
  if (c.runs.some((r) => r.ok)) return null;
  const r = c.runs.find((x) => !x.ok);
  return r ? r.error.split("\n")[0].slice(0, 140) : "not run";
}

const ms = (x) =>
  x === undefined || x === null
    ? "—"
    : x >= 1000
    ? `${Math.round(x)}`
    : x >= 100
    ? x.toFixed(1)
    : x.toFixed(2);
const ratio = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
const spread = (s) => (s.n > 1 ? `${ms(s.min)}–${ms(s.max)}` : "—");
const mb = (x) => (x === undefined ? "—" : x.toFixed(1));
const nfmt = (n) => n.toLocaleString("en-US");

function table(header, rows) {
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${
      header.map((h) => (h.startsWith(">") ? "---:" : "---")).join(" | ")
    } |`,
  ];
  for (const r of rows) lines.push(`| ${r.join(" | ")} |`);
  return lines.join("\n").replaceAll("| >", "| ");
}

function name(c) {
  const lib = c.role === "sluice" ? "**sluice**" : c.lib;
  return [lib, c.label];
}

const find = (entry, id) => entry.cases.find((c) => c.id === id);

/** Rows for a timed workload: median, spread, ratios to the named floors. */
function timedRows(entry, floors) {
  const base = floors.map((id) => stat(find(entry, id)));
  return entry.cases.map((c) => {
    const s = stat(c);
    const fail = failure(c);
    if (s === null) {
      return [
        ...name(c),
        c.order,
        c.consume,
        `✗ ${fail}`,
        "",
        ...floors.map(() => ""),
      ];
    }
    return [
      ...name(c),
      c.order,
      c.consume,
      ms(s.med),
      spread(s),
      ...base.map((b) => (b ? `${ratio(s.med / b.med)}×` : "—")),
    ];
  });
}

function report(env, sluice, results, options) {
  const out = [];
  out.push(
    `# sluice against its peers${
      options.quick ? " (quick run: small sizes, not for quoting)" : ""
    }`,
  );
  out.push("");
  out.push(
    `- ${env.date}; ${env.cpu}, ${env.memory}, ${env.os}; load average ${env.loadStart} at the start, ${env.loadEnd} at the end; ${env.minutes} min`,
  );
  out.push(`- Node ${env.node}: sluice from ${sluice.node.how}`);
  out.push(`- ${env.deno}: sluice from ${sluice.deno.how}`);
  out.push(`- sluice at ${env.sluice}`);
  if (sluice.node.threads) {
    out.push(
      `- sluice/threads (W7): Node ${sluice.node.threads.how}; Deno ${sluice.deno.threads.how}`,
    );
  }
  out.push(
    `- peers: ${
      Object.entries(env.peers).map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
  );
  out.push(
    `- ${options.reps} repetition(s) (at most 3 for W1 at 1,000,000 and W3), each library in a fresh process per repetition, interleaved; figures are medians over the repetitions (each repetition's figure is itself the median of its timed iterations), spread = min–max over repetitions; ratios use the floor's median from the same run`,
  );
  const targets = [];
  for (const entry of results) {
    out.push("");
    out.push(`## ${entry.workload}, ${entry.runtime}, n = ${nfmt(entry.n)}`);
    out.push("");
    const section = SECTIONS[entry.workload];
    out.push(section(entry, targets, results));
  }
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push(
    table(
      ["runtime", "target", "figure", "verdict"],
      targets.map((t) => [t.runtime, t.target, t.figure, t.verdict]),
    ),
  );
  out.push("");
  return out.join("\n");
}

const verdict = (
  ok,
  margin,
) => (ok ? `met (${margin})` : `**missed** (${margin})`);

/** Sluice's matching case for a peer case: same order, stream or array. */
function sluiceMatch(entry, c) {
  const how = c.consume === "array" ? "collect" : "for-await";
  return find(entry, `sluice-${how}-${c.order}`);
}

const SECTIONS = {
  W1(entry, targets) {
    const rows = timedRows(entry, ["loop", "loop-array", "generator"]);
    const txt = table(
      [
        "library",
        "case",
        "order",
        "output",
        ">median ms",
        ">spread",
        ">× loop",
        ">× array loop",
        ">× generator",
      ],
      rows,
    );
    const gen = stat(find(entry, "generator"));
    const loop = stat(find(entry, "loop"));
    const arrayLoop = stat(find(entry, "loop-array"));
    for (const order of ["input", "completion"]) {
      const fa = stat(find(entry, `sluice-for-await-${order}`));
      if (fa && gen) {
        const r = fa.med / gen.med;
        targets.push({
          runtime: entry.runtime,
          target: `W1 ${
            nfmt(entry.n)
          }: \`for await\`, ${order} order ≤ 1.1× bare generator`,
          figure: `${ratio(r)}×`,
          verdict: verdict(
            r <= 1.1,
            `${((r / 1.1 - 1) * 100).toFixed(0)} % vs limit`,
          ),
        });
      }
      // collect() returns an array: measured against the loop that builds
      // the same array (the floor of bench/map_bench.ts), and shown against
      // the loop that only consumes.
      const co = stat(find(entry, `sluice-collect-${order}`));
      if (co && loop && arrayLoop) {
        const r = co.med / arrayLoop.med;
        targets.push({
          runtime: entry.runtime,
          target: `W1 ${
            nfmt(entry.n)
          }: \`collect()\`, ${order} order ≤ 2× the loop into an array`,
          figure: `${ratio(r)}× (${
            ratio(co.med / loop.med)
          }× the loop without an array)`,
          verdict: verdict(
            r <= 2,
            `${((r / 2 - 1) * 100).toFixed(0)} % vs limit`,
          ),
        });
      }
    }
    const ahead = [];
    for (const c of entry.cases.filter((x) => x.role === "peer")) {
      const s = stat(c);
      const m = sluiceMatch(entry, c);
      const sm = m && stat(m);
      if (s && sm && s.med <= sm.med) {
        ahead.push(`${c.lib} ${c.label} (${ms(s.med)} ms vs ${ms(sm.med)} ms)`);
      }
    }
    targets.push({
      runtime: entry.runtime,
      target: `W1 ${
        nfmt(entry.n)
      }: ahead of every peer (same order, same kind of output)`,
      figure: ahead.length
        ? `faster: ${ahead.join("; ")}`
        : "every peer slower",
      verdict: ahead.length ? "**missed**" : "met",
    });
    return txt;
  },

  W2(entry, targets) {
    const durations = heavyTailDurations(entry.n);
    const lb = lowerBound(durations, 10);
    const ideal = idealGreedy(durations, 10);
    const pool = stat(find(entry, "greedy-pool"));
    const floor = stat(find(entry, "loop"));
    const sum = durations.reduce((a, b) => a + b, 0);
    const rows = [
      [
        "computed",
        "lower bound max(sum/10, max)",
        "",
        "",
        ms(lb),
        "",
        "",
        "",
        "",
        "",
      ],
      ["computed", "ideal greedy pool", "", "", ms(ideal), "", "", "", "", ""],
    ];
    for (const c of entry.cases) {
      const s = stat(c);
      if (s === null) {
        rows.push([
          ...name(c),
          c.order,
          c.consume,
          `✗ ${failure(c)}`,
          "",
          "",
          "",
          "",
          "",
        ]);
        continue;
      }
      const ttfr = stat(c, "ttfrMs");
      const ahead = stat(c, "readAhead");
      rows.push([
        ...name(c),
        c.order,
        c.consume,
        ms(s.med),
        spread(s),
        pool ? `${((s.med / pool.med - 1) * 100).toFixed(1)} %` : "—",
        `${((s.med / ideal - 1) * 100).toFixed(1)} %`,
        ms(ttfr?.med),
        String(ahead?.max ?? "—"),
      ]);
    }
    const txt =
      `${durations.length} tasks, sum ${sum} ms, max ${
        Math.max(...durations)
      } ms, concurrency 10${
        floor ? `; the sequential loop took ${ms(floor.med)} ms` : ""
      }.\n\n` +
      table(
        [
          "library",
          "case",
          "order",
          "output",
          ">makespan ms",
          ">spread",
          ">vs greedy pool",
          ">vs ideal",
          ">first result ms",
          ">max read-ahead",
        ],
        rows,
      );
    const si = stat(find(entry, "sluice-input"));
    if (si && pool) {
      const r = si.med / pool.med - 1;
      const ahead = stat(find(entry, "sluice-input"), "readAhead");
      targets.push({
        runtime: entry.runtime,
        target: "W2: input-order makespan within 2 % of the greedy pool",
        figure: `${(r * 100).toFixed(1)} % (${ms(si.med)} vs ${
          ms(pool.med)
        } ms; ${
          ((si.med / ideal - 1) * 100).toFixed(1)
        } % vs the computed ideal)`,
        verdict: verdict(r <= 0.02, `limit 2 %`),
      });
      for (
        const [id, buf] of [["sluice-input", 1024], [
          "sluice-input-buffer-64",
          64,
        ], ["sluice-input-buffer-16", 16]]
      ) {
        const a = stat(find(entry, id), "readAhead");
        if (!a) continue;
        const bound = buf + 10 + 1;
        targets.push({
          runtime: entry.runtime,
          target:
            `W2: read-ahead ≤ bufferSize ${buf} + concurrency 10 (+1 on its way to the consumer)`,
          figure: `max ${a.max}`,
          verdict: verdict(a.max <= bound, `bound ${bound}`),
        });
      }
      void ahead;
    }
    return txt;
  },

  W3(entry, targets) {
    const loop = stat(find(entry, "loop"));
    const rows = entry.cases.map((c) => {
      const s = stat(c);
      if (s === null) {
        return [...name(c), c.order, `✗ ${failure(c)}`, "", "", "", "", "", ""];
      }
      return [
        ...name(c),
        c.order,
        ms(s.med),
        spread(s),
        loop ? `${ratio(s.med / loop.med)}×` : "—",
        String(stat(c, "readAhead").max),
        mb(stat(c, "rssGrowthMB")?.med),
        mb(stat(c, "heapMidMB")?.med),
        mb(stat(c, "heapGrowthMB")?.med),
      ];
    });
    const txt = table(
      [
        "library",
        "case",
        "order",
        ">wall ms",
        ">spread",
        ">× loop",
        ">max read-ahead",
        ">RSS growth MB",
        ">live heap at 50 % MB",
        ">live heap 25 → 75 % MB",
      ],
      rows,
    );
    for (
      const [id, buf] of [["sluice-input", 1024], ["sluice-completion", 1024], [
        "sluice-input-buffer-64",
        64,
      ]]
    ) {
      const c = find(entry, id);
      const s = c && stat(c);
      if (!s) continue;
      const a = stat(c, "readAhead").max;
      const growth = stat(c, "heapGrowthMB").med;
      const bound = buf + 16 + 1;
      const r = loop ? s.med / loop.med : NaN;
      targets.push({
        runtime: entry.runtime,
        target: `W3 ${
          id.replace("sluice-", "")
        }: read-ahead ≤ ${buf} + 16 (+1), flat memory, wall ≤ 1.3× loop`,
        figure: `read-ahead ${a}, live heap 25 → 75 % ${mb(growth)} MB, ${
          ratio(r)
        }× loop`,
        verdict: verdict(
          a <= bound && growth < 1 && r <= 1.3,
          `bound ${bound}; flat: live heap grows < 1 MB`,
        ),
      });
    }
    return txt;
  },

  W4(entry, targets) {
    const txt = table(
      [
        "library",
        "case",
        "order",
        "output",
        ">median ms",
        ">spread",
        ">× loop",
      ],
      timedRows(entry, ["loop"]),
    );
    const loop = stat(find(entry, "loop"));
    for (const id of ["sluice-for-await", "sluice-collect"]) {
      const s = stat(find(entry, id));
      if (!s || !loop) continue;
      const r = s.med / loop.med;
      targets.push({
        runtime: entry.runtime,
        target: `W4: ${id.replace("sluice-", "")} ≤ 1.25× loop`,
        figure: `${ratio(r)}×`,
        verdict: verdict(
          r <= 1.25,
          `${((r / 1.25 - 1) * 100).toFixed(0)} % vs limit`,
        ),
      });
    }
    return txt;
  },

  W5(entry, targets, results) {
    const w1 =
      results.find((e) =>
        e.workload === "W1" && e.runtime === entry.runtime && e.n === entry.n
      ) ?? results.find((e) =>
        e.workload === "W1" && e.runtime === entry.runtime
      );
    const rows = timedRows(entry, ["loop"]).map((row, i) => {
      const c = entry.cases[i];
      const s = stat(c);
      return [...row, s ? `${Math.round((s.med * 1e6) / entry.n)}` : ""];
    });
    const txt = table(
      [
        "library",
        "case",
        "order",
        "output",
        ">median ms",
        ">spread",
        ">× loop",
        ">ns per item",
      ],
      rows,
    );
    if (w1) {
      for (const c of entry.cases.filter((x) => x.role === "sluice")) {
        const s = stat(c);
        const one = stat(find(w1, c.id));
        if (!s || !one) continue;
        const per5 = (s.med * 1e6) / entry.n;
        const per1 = (one.med * 1e6) / w1.n;
        const r = per5 / (per1 * 3);
        targets.push({
          runtime: entry.runtime,
          target: `W5 ${
            c.id.replace("sluice-", "")
          }: per item ≤ 2 × W1's (n = ${nfmt(w1.n)}) × 3 stages`,
          figure: `${Math.round(per5)} ns vs 3 × ${Math.round(per1)} ns = ${
            ratio(r)
          }× (limit 2×)`,
          verdict: verdict(
            r <= 2,
            `${((r / 2 - 1) * 100).toFixed(0)} % vs limit`,
          ),
        });
      }
    }
    return txt;
  },

  W6(entry, targets) {
    const rows = timedRows(entry, ["loop"]).map((row, i) => {
      const s = stat(entry.cases[i]);
      return [...row, s ? nfmt(Math.round(entry.n / (s.med / 1000))) : ""];
    });
    const txt = table(
      [
        "library",
        "case",
        "order",
        "output",
        ">median ms",
        ">spread",
        ">× loop",
        ">calls/s",
      ],
      rows,
    );
    const dl = stat(find(entry, "dataloader"));
    const b = find(entry, "sluice-batcher-unbounded");
    const bs = b && stat(b);
    if (b && !bs) {
      targets.push({
        runtime: entry.runtime,
        target: "W6: Batcher throughput ≥ dataloader's",
        figure: failure(b),
        verdict: "not measured",
      });
    } else if (bs && dl) {
      const r = dl.med / bs.med;
      targets.push({
        runtime: entry.runtime,
        target:
          "W6: Batcher (`concurrency: Infinity`) throughput ≥ dataloader's (`maxBatchSize: 100`)",
        figure: `${r.toFixed(2)}× dataloader's (${ms(bs.med)} vs ${
          ms(dl.med)
        } ms)`,
        verdict: verdict(r >= 1, `limit 1.00×`),
      });
    }
    return txt;
  },

  W7(entry, targets) {
    const group = (prefix) =>
      entry.cases.filter((c) => c.id.startsWith(`${prefix}-`));
    const failed = (c, cols) => [...name(c), `✗ ${failure(c)}`, ...cols];
    const out = [];
    // 48 CPU tasks: makespan, and speed-up over the inline map.
    const inline = stat(find(entry, "cpu-inline"));
    const cpuCases = group("cpu");
    const tasks = cpuCases.map((c) => c.runs.find((r) => r.ok)?.tasks).find(
      (x) => x !== undefined,
    );
    out.push(
      `**CPU**: ${
        tasks ?? "?"
      } tasks of ≈ 40 ms CPU, \`map(fn, { concurrency: 2 })\`, 2 threads.\n`,
    );
    out.push(table(
      ["library", "case", ">makespan ms", ">spread", ">× faster than inline"],
      cpuCases.map((c) => {
        const s = stat(c);
        if (!s) return failed(c, ["", ""]);
        return [
          ...name(c),
          ms(s.med),
          spread(s),
          inline ? `${ratio(inline.med / s.med)}×` : "—",
        ];
      }),
    ));
    const cs = stat(find(entry, "cpu-sluice"));
    if (cs && inline) {
      const r = inline.med / cs.med;
      targets.push({
        runtime: entry.runtime,
        target: "W7: CPU tasks on 2 threads ≥ 1.8× faster than inline",
        figure: `${ratio(r)}× (${ms(cs.med)} vs ${ms(inline.med)} ms)`,
        verdict: verdict(r >= 1.8, "limit 1.80×"),
      });
    }
    // Tiny tasks: round trip per call.
    const tinyCases = group("tiny");
    const ts = stat(find(entry, "tiny-sluice"));
    out.push(
      `\n**Tiny tasks**: ${
        nfmt(entry.n)
      } calls of \`x * 2 + 1\`, all made at once, 2 threads.\n`,
    );
    out.push(table(
      ["library", "case", ">total ms", ">spread", ">µs per call", ">× sluice"],
      tinyCases.map((c) => {
        const s = stat(c);
        if (!s) return failed(c, ["", "", ""]);
        return [
          ...name(c),
          ms(s.med),
          spread(s),
          ((s.med * 1000) / entry.n).toFixed(2),
          ts ? `${ratio(s.med / ts.med)}×` : "—",
        ];
      }),
    ));
    for (const c of tinyCases.filter((x) => x.role === "peer")) {
      const s = stat(c);
      if (!ts || !s) continue;
      const r = ts.med / s.med;
      targets.push({
        runtime: entry.runtime,
        target: `W7: tiny task round trip ≤ ${c.lib}'s`,
        figure: `${((ts.med * 1000) / entry.n).toFixed(2)} vs ${
          ((s.med * 1000) / entry.n).toFixed(2)
        } µs per call (${ratio(r)}×)`,
        verdict: verdict(r <= 1, "limit 1.00×"),
      });
    }
    // Transfer: 1 MB against 16 MB, moved; 16 MB copied for reference.
    // Each case alternates with a 1 MB buffer in its own process: the
    // paired ratio is the steadier figure (thread latency moves per process).
    const one = stat(find(entry, "transfer-sluice-1mb"));
    out.push(
      "\n**Transfer**: an `ArrayBuffer` to a thread and back, median round trip of 200; each case alternates with a 1 MB buffer moved through the same thread (paired ratio: the case over that, in the same process).\n",
    );
    out.push(table(
      [
        "library",
        "case",
        ">round trip ms",
        ">spread",
        ">× 1 MB moved (case)",
        ">× 1 MB moved (paired)",
      ],
      group("transfer").map((c) => {
        const s = stat(c);
        if (!s) return failed(c, ["", "", ""]);
        const paired = stat(c, "pairedRatio");
        return [
          ...name(c),
          s.med.toFixed(3),
          s.n > 1 ? `${s.min.toFixed(3)}–${s.max.toFixed(3)}` : "—",
          one ? `${ratio(s.med / one.med)}×` : "—",
          paired ? `${ratio(paired.med)}×` : "—",
        ];
      }),
    ));
    const sixteen = find(entry, "transfer-sluice-16mb");
    const paired = sixteen && stat(sixteen, "pairedRatio");
    if (one && paired) {
      const s = stat(sixteen);
      targets.push({
        runtime: entry.runtime,
        target:
          "W7: transfer time independent of size (16 MB ÷ 1 MB ≈ 1, paired in one process; ≤ 1.5× taken as met)",
        figure: `${ratio(paired.med)}× (spread ${ratio(paired.min)}–${
          ratio(paired.max)
        }×; across processes ${s.med.toFixed(3)} vs ${one.med.toFixed(3)} ms)`,
        verdict: verdict(paired.med <= 1.5, "limit 1.50×"),
      });
    }
    // Abort of a busy loop.
    out.push(
      "\n**Abort**: a task spinning forever, aborted 30 ms after it started; 20 aborts per repetition.\n",
    );
    const abortCases = group("abort");
    out.push(table(
      [
        "library",
        "case",
        ">median ms to reject",
        ">p95 ms",
        ">worst p95 ms",
        ">next call answered, ms",
      ],
      abortCases.map((c) => {
        const s = stat(c);
        if (!s) return failed(c, ["", "", ""]);
        const p95 = stat(c, "p95Ms");
        return [
          ...name(c),
          ms(s.med),
          ms(p95.med),
          ms(p95.max),
          ms(stat(c, "nextMs").med),
        ];
      }),
    ));
    const ab = find(entry, "abort-sluice");
    const as = ab && stat(ab);
    if (ab && !as) {
      targets.push({
        runtime: entry.runtime,
        target: "W7: an aborted busy task rejects within 50 ms",
        figure: failure(ab),
        verdict: "not measured",
      });
    } else if (as) {
      const p95 = stat(ab, "p95Ms");
      targets.push({
        runtime: entry.runtime,
        target: "W7: an aborted busy task rejects within 50 ms",
        figure: `median ${ms(as.med)} ms, p95 ${ms(p95.med)} ms (worst ${
          ms(p95.max)
        } ms); next call answered after ${ms(stat(ab, "nextMs").med)} ms`,
        verdict: verdict(p95.max <= 50, "limit 50 ms at p95"),
      });
    }
    return out.join("\n");
  },
};

main();
