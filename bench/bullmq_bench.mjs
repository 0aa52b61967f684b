#!/usr/bin/env node
// sluice/bullmq against the same work written directly on BullMQ, in the same
// run: 10,000 jobs of 5 ms (a setTimeout sleep in the worker) with 1, 2 and 4
// worker processes, each taking `--concurrency` jobs at a time (default 8, so
// one worker is the bottleneck: 8 slots / 5 ms = 1,600 jobs/s at most), and
// the pipeline keeping `--outstanding` jobs in flight (default 64, more than
// 4 workers × 8 slots, so the queue never runs dry).
//
//   sluice: pipeline(map(remote(queue), { concurrency: 64 })).run(items)
//           .collect(), workers serve(queue, fn, { concurrency: 8 })
//   bare:   64 lanes of queue.add() + job.waitUntilFinished(queueEvents),
//           workers new Worker(queue, fn, { concurrency: 8 }) with the same
//           lock and stalled-check settings and the same retention
//
// Every (workers, kind) case runs once per round, sluice and bare alternating
// who goes first; each case gets fresh worker processes, a warm-up of 300
// jobs, then the timed jobs, then FLUSHDB. It starts its own redis-server
// (free 127.0.0.1 port, no persistence, temp dir) and stops everything at the
// end, also on failure or Ctrl-C. Needs npm/ (`deno run -A
// scripts/build_npm.ts`).
//
//   node bench/bullmq_bench.mjs [--rounds 3] [--jobs 10000] [--concurrency 8]
//     [--outstanding 64] [--workers 1,2,4] [--ms 5] [--prof DIR]
//     [--module npm/esm/bullmq.before.js]
//
// CPU: the pipeline process's (this one) from process.cpuUsage() around the
// timed run, each worker's from its own process.cpuUsage(), Redis's from
// INFO cpu. `--prof DIR` runs the sluice pipeline in a child `node
// --cpu-prof` process instead (one run, with the first of `--workers`
// worker processes) and writes the profile there.
//
// `--module PATH` (from the project root) makes the sluice pipeline use
// another build of sluice/bullmq, e.g. a copy saved before a change, for an
// A/B in one run: its cases are labelled "module" and run beside the others.
//
// The worker side is this same file: `node bench/bullmq_bench.mjs --worker
// <sluice|bare> <redis url> <queue> <concurrency> <ms>`.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";

const HERE = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LOCK = { lockDuration: 5000, stalledInterval: 5000, maxStalledCount: 1 };
const KEEP = { age: 3600 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

function flags(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) continue;
    const next = argv[i + 1];
    out[argv[i].slice(2)] = next === undefined || next.startsWith("--")
      ? true
      : argv[++i];
  }
  return out;
}

// ---- worker process -----------------------------------------------------------

async function workerMain([kind, url, queue, concurrency, ms]) {
  const C = Number(concurrency);
  const work = (n) => sleep(Number(ms)).then(() => ({ n: n * 2 }));
  let close;
  if (kind === "sluice") {
    const { serve } = await import("../npm/esm/bullmq.js");
    const server = serve(queue, (item) => work(item.n), {
      connection: url,
      concurrency: C,
    });
    await server.ready();
    close = () => server.close();
  } else {
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const worker = new Worker(queue, (job) => work(job.data.n), {
      connection,
      concurrency: C,
      prefix: "bull",
      ...LOCK,
    });
    await worker.waitUntilReady();
    close = async () => {
      await worker.close();
      connection.disconnect();
    };
  }
  const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
  say({ ready: true, pid: process.pid });
  let buffer = "";
  process.stdin.on("data", async (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === "cpu") say({ cpu: cpuMicros() });
      if (line === "stop") {
        await close();
        process.exit(0);
      }
    }
  });
  process.stdin.on("end", () => process.exit(0));
}

// ---- orchestration --------------------------------------------------------------

const children = new Set();
function killAll() {
  for (const child of children) {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** Starts a worker process; resolves with `{ child, ask(line) }` once ready. */
function startWorker(kind, url, queue, C, ms) {
  const child = spawn(process.execPath, [
    HERE,
    "--worker",
    kind,
    url,
    queue,
    String(C),
    String(ms),
  ], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const replies = [];
  let waiting = null;
  let buffer = "";
  child.stdout.on("data", (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      replies.push(JSON.parse(buffer.slice(0, nl)));
      buffer = buffer.slice(nl + 1);
      waiting?.();
    }
  });
  const next = () =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (replies.length) {
          waiting = null;
          resolve(replies.shift());
        }
      };
      waiting = check;
      child.once(
        "exit",
        (code) => reject(new Error(`worker exited (${code})`)),
      );
      check();
    });
  return next().then(() => ({
    child,
    async cpu() {
      child.stdin.write("cpu\n");
      return (await next()).cpu;
    },
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin.write("stop\n");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  }));
}

/** Redis's own CPU time so far (µs), from INFO cpu. */
async function redisCpu(admin) {
  const info = await admin.info("cpu");
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)[1]);
  return Math.round((get("used_cpu_user") + get("used_cpu_sys")) * 1e6);
}

/** A runner of `count` items through sluice: returns the results. */
async function sluiceRunner(url, queue, outstanding, module) {
  const { map, pipeline } = await import("../npm/esm/mod.js");
  const { remote } = await import(
    module ? new URL(module, `file://${ROOT}`).href : "../npm/esm/bullmq.js"
  );
  const stage = remote(queue, { connection: url });
  const p = pipeline(map(stage, { concurrency: outstanding }));
  return {
    run: (items) => p.run(items).collect(),
    close: () => stage.close(),
  };
}

/** The same on bare BullMQ: `outstanding` lanes of add + waitUntilFinished. */
async function bareRunner(url, queue, outstanding) {
  const client = new Redis(url, { maxRetriesPerRequest: null });
  const eventsClient = new Redis(url, { maxRetriesPerRequest: null });
  const q = new Queue(queue, { connection: client });
  const events = new QueueEvents(queue, { connection: eventsClient });
  q.setMaxListeners(0);
  events.setMaxListeners(0);
  await Promise.all([q.waitUntilReady(), events.waitUntilReady()]);
  return {
    async run(items) {
      const out = new Array(items.length);
      let next = 0;
      const lane = async () => {
        while (next < items.length) {
          const i = next++;
          const job = await q.add(queue, items[i], {
            attempts: 1,
            removeOnComplete: KEEP,
            removeOnFail: KEEP,
          });
          out[i] = await job.waitUntilFinished(events);
        }
      };
      await Promise.all(Array.from({ length: outstanding }, lane));
      return out;
    },
    async close() {
      await events.close();
      await q.close();
      client.disconnect();
      eventsClient.disconnect();
    },
  };
}

const items = (from, count) =>
  Array.from({ length: count }, (_, i) => ({ n: from + i }));

function check(results, input) {
  if (results.length !== input.length) {
    throw new Error(`${results.length} results for ${input.length} items`);
  }
  for (let i = 0; i < input.length; i++) {
    if (results[i]?.n !== input[i].n * 2) {
      throw new Error(`result ${i} is ${JSON.stringify(results[i])}`);
    }
  }
}

/** One measured case: fresh workers, a warm-up, the timed run, FLUSHDB. */
async function measure(o, kind, workers, round) {
  const queue = `bench-${kind}-${workers}-${round}`;
  const ws = await Promise.all(
    Array.from(
      { length: workers },
      () =>
        startWorker(
          kind === "bare" ? "bare" : "sluice",
          o.url,
          queue,
          o.C,
          o.ms,
        ),
    ),
  );
  const runner = kind === "bare"
    ? await bareRunner(o.url, queue, o.K)
    : await sluiceRunner(o.url, queue, o.K, kind === "module" && o.module);
  try {
    const warm = items(0, 300);
    check(await runner.run(warm), warm);
    const input = items(1000, o.jobs);
    const [w0, r0] = await Promise.all([
      Promise.all(ws.map((w) => w.cpu())),
      redisCpu(o.admin),
    ]);
    const c0 = cpuMicros();
    const t0 = performance.now();
    const results = await runner.run(input);
    const wall = performance.now() - t0;
    const pipelineCpu = cpuMicros() - c0;
    const [w1, r1] = await Promise.all([
      Promise.all(ws.map((w) => w.cpu())),
      redisCpu(o.admin),
    ]);
    check(results, input);
    const workerCpu = w1.map((c, i) => c - w0[i]);
    return {
      kind,
      workers,
      round,
      wallMs: wall,
      jobsPerS: o.jobs / (wall / 1000),
      pipelineUsPerItem: pipelineCpu / o.jobs,
      pipelineCores: pipelineCpu / 1000 / wall,
      workerCores: workerCpu.map((c) => c / 1000 / wall),
      workerUsPerItem: workerCpu.reduce((a, b) => a + b, 0) / o.jobs,
      redisCores: (r1 - r0) / 1000 / wall,
      redisUsPerItem: (r1 - r0) / o.jobs,
    };
  } finally {
    await runner.close();
    await Promise.all(ws.map((w) => w.stop()));
    await o.admin.flushdb();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(args) {
  const { startRedis } = await import("../tests/node/_redis.mjs");
  const o = {
    rounds: Number(args.rounds ?? 3),
    jobs: Number(args.jobs ?? 10_000),
    C: Number(args.concurrency ?? 8),
    K: Number(args.outstanding ?? 64),
    ms: Number(args.ms ?? 5),
    workerCounts: String(args.workers ?? "1,2,4").split(",").map(Number),
    module: args.module,
  };
  const redis = await startRedis();
  const stopAll = async () => {
    killAll();
    await redis.close();
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => stopAll().then(() => process.exit(130)));
  }
  o.url = redis.url;
  o.admin = new Redis(redis.url);
  const started = Date.now();
  try {
    if (args.prof) {
      await profile(o, String(args.prof));
      return;
    }
    console.log(
      `${o.jobs} jobs of ${o.ms} ms, worker concurrency ${o.C}, ` +
        `${o.K} outstanding, ${o.rounds} rounds, node ${process.version}`,
    );
    const all = [];
    for (let round = 0; round < o.rounds; round++) {
      for (const workers of o.workerCounts) {
        const kinds = o.module
          ? ["sluice", "bare", "module"]
          : ["sluice", "bare"];
        const order = (round + workers) % 2 === 0 ? kinds : kinds.reverse();
        for (const kind of order) {
          const r = await measure(o, kind, workers, round);
          all.push(r);
          console.log(
            `round ${round + 1} · ${workers} worker(s) · ${kind.padEnd(6)}: ` +
              `${r.jobsPerS.toFixed(0)} jobs/s, pipeline ` +
              `${r.pipelineUsPerItem.toFixed(0)} µs/item ` +
              `(${r.pipelineCores.toFixed(2)} cores), workers ` +
              `${r.workerCores.map((c) => c.toFixed(2)).join("+")} cores, ` +
              `redis ${r.redisCores.toFixed(2)} cores`,
          );
        }
      }
    }
    report(o, all);
    console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    o.admin.disconnect();
    await stopAll();
  }
}

function report(o, all) {
  const pick = (kind, workers, f) =>
    median(all.filter((r) => r.kind === kind && r.workers === workers).map(f));
  const tps = (k, w) => pick(k, w, (r) => r.jobsPerS);
  console.log(
    `\n| workers | bare BullMQ jobs/s | sluice jobs/s | sluice / bare, per round: median (range) | ` +
      `pipeline µs/item (bare · sluice) | workers µs/item, all (bare · sluice) | ` +
      `redis µs/item (bare · sluice) | cores used (bare · sluice) |`,
  );
  console.log(
    "| ------: | -----------------: | ------------: | --------------------------------------: | " +
      "-------------------------------: | -----------------------------------: | " +
      "----------------------------: | -------------------------: |",
  );
  const cores = (k, w) =>
    pick(
      k,
      w,
      (r) =>
        r.pipelineCores + r.redisCores +
        r.workerCores.reduce((a, b) => a + b, 0),
    );
  const f0 = (x) => x.toFixed(0);
  // sluice / bare of each round (the two ran back to back), then the median.
  const paired = (kind, w) => {
    const rs = [];
    for (let round = 0; round < o.rounds; round++) {
      const one = (k) =>
        all.find((r) => r.kind === k && r.workers === w && r.round === round);
      if (one(kind) && one("bare")) {
        rs.push(one(kind).jobsPerS / one("bare").jobsPerS);
      }
    }
    return rs;
  };
  const range = (rs) =>
    `${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}`;
  for (const w of o.workerCounts) {
    const b = tps("bare", w);
    const s = tps("sluice", w);
    const rs = paired("sluice", w);
    console.log(
      `| ${w} | ${f0(b)} | ${f0(s)} | **${median(rs).toFixed(2)}** (${
        range(rs)
      }) | ` +
        `${f0(pick("bare", w, (r) => r.pipelineUsPerItem))} · ` +
        `${f0(pick("sluice", w, (r) => r.pipelineUsPerItem))} | ` +
        `${f0(pick("bare", w, (r) => r.workerUsPerItem))} · ` +
        `${f0(pick("sluice", w, (r) => r.workerUsPerItem))} | ` +
        `${f0(pick("bare", w, (r) => r.redisUsPerItem))} · ` +
        `${f0(pick("sluice", w, (r) => r.redisUsPerItem))} | ` +
        `${cores("bare", w).toFixed(2)} · ${cores("sluice", w).toFixed(2)} |`,
    );
  }
  if (o.module) {
    for (const w of o.workerCounts) {
      const rs = paired("module", w);
      console.log(
        `${o.module} at ${w} worker(s): ${f0(tps("module", w))} jobs/s, ` +
          `${median(rs).toFixed(2)}× bare (${range(rs)}), pipeline ` +
          `${f0(pick("module", w, (r) => r.pipelineUsPerItem))} µs/item ` +
          `(sluice ${f0(pick("sluice", w, (r) => r.pipelineUsPerItem))})`,
      );
    }
  }
  if (o.workerCounts.includes(1) && o.workerCounts.includes(2)) {
    const scale = (k) => tps(k, 2) / tps(k, 1);
    console.log(
      `\nscaling 1 → 2 workers: sluice ${scale("sluice").toFixed(2)}×, ` +
        `bare ${scale("bare").toFixed(2)}× ` +
        `(goal ≥ 1.8×; one worker's ceiling ${f0(o.C / o.ms * 1000)} jobs/s)`,
    );
  }
  if (o.workerCounts.includes(4) && o.workerCounts.includes(1)) {
    const scale = (k) => tps(k, 4) / tps(k, 1);
    console.log(
      `scaling 1 → 4 workers: sluice ${scale("sluice").toFixed(2)}×, ` +
        `bare ${scale("bare").toFixed(2)}×`,
    );
  }
}

/** `--prof DIR`: the sluice pipeline in a `node --cpu-prof` child. */
async function profile(o, dir) {
  mkdirSync(dir, { recursive: true });
  const queue = "bench-prof";
  const ws = await Promise.all(
    Array.from(
      { length: o.workerCounts[0] },
      () => startWorker("sluice", o.url, queue, o.C, o.ms),
    ),
  );
  try {
    const child = spawn(process.execPath, [
      "--cpu-prof",
      "--cpu-prof-dir",
      dir,
      HERE,
      "--pipeline",
      o.url,
      queue,
      String(o.K),
      String(o.jobs),
    ], { cwd: ROOT, stdio: "inherit" });
    children.add(child);
    const code = await new Promise((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`profiled pipeline exited ${code}`);
    console.log(`profile written to ${dir}`);
  } finally {
    await Promise.all(ws.map((w) => w.stop()));
  }
}

async function pipelineMain([url, queue, outstanding, jobs]) {
  const runner = await sluiceRunner(url, queue, Number(outstanding));
  const input = items(0, Number(jobs));
  const c0 = cpuMicros();
  const t0 = performance.now();
  check(await runner.run(input), input);
  const wall = performance.now() - t0;
  console.log(
    `profiled run: ${(Number(jobs) / wall * 1000).toFixed(0)} jobs/s, ` +
      `${((cpuMicros() - c0) / Number(jobs)).toFixed(0)} µs/item`,
  );
  await runner.close();
}

const argv = process.argv.slice(2);
if (argv[0] === "--worker") await workerMain(argv.slice(1));
else if (argv[0] === "--pipeline") await pipelineMain(argv.slice(1));
else await main(flags(argv));
