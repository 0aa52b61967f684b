#!/usr/bin/env node
// The cluster demo, one command: `npm run demo:cluster` (or `node
// examples/cluster/run.mjs`). Starts, all on 127.0.0.1:
//   1. Redis: Debian's redis-server on a free port, persistence off, in a temp
//      dir;
//   2. two worker processes serving the demo's re-rank stage on the BullMQ
//      queue "demo-rerank" (examples/cluster/worker.ts): one on Node (bundled
//      with esbuild into the temp dir), one on Bun;
//   3. the SSE demo server (examples/cluster/server.ts, the Hono app of `npm
//      run demo` on Deno) whose re-rank stage runs on those workers when the
//      page's "re-rank on remote workers" switch is on (`?rerank=remote`).
// Prints the URL; each answer on the page then says which process served it.
// Ctrl-C (SIGINT) or SIGTERM stops everything, removes the temp dir, and
// exits 0; if any part dies, the rest is stopped and it exits 1.
//
// Settings: PORT (default 8000; a free one when taken), LATENCY_SCALE
// (default 1), REDIS_SERVER (default redis-server).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
// The tests' Redis helpers (as bench/bullmq_bench.mjs uses them).
import { freePort, waitForPing } from "../../tests/node/_redis.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HERE = join(ROOT, "examples/cluster");
const BIN = join(ROOT, "node_modules/.bin");
const REDIS = process.env.REDIS_SERVER ?? "redis-server";
const env = { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" };

if (spawnSync(REDIS, ["--version"]).error) {
  console.error(
    `${REDIS} is missing: install Debian's redis-server ` +
      "(sudo apt-get install redis-server), or set REDIS_SERVER to its path.",
  );
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "sluice-cluster-"));
/** Every process started here, in start order: { name, child }. */
const parts = [];
let stopping = false;

function portFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Starts a part; resolves with the first stdout line that `ready` accepts
 * (its output goes on to this terminal, prefixed with its name, unless
 * `quiet`).
 */
function start(name, command, args, { ready, extraEnv = {}, quiet } = {}) {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", quiet ? "ignore" : "pipe", quiet ? "ignore" : "pipe"],
  });
  parts.push({ name, child });
  child.stderr?.on("data", (d) => process.stderr.write(prefix(name, d)));
  return new Promise((resolve, reject) => {
    let buffer = "";
    let done = !ready;
    if (done) resolve(null);
    child.stdout?.on("data", (d) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!done && ready(line)) {
          done = true;
          resolve(line);
        } else process.stdout.write(prefix(name, line + "\n"));
      }
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (!done) reject(new Error(`${name} exited (${signal ?? code})`));
      else if (!stopping) {
        console.error(`${name} exited (${signal ?? code}); stopping the demo`);
        void stopAll(1);
      }
    });
  });
}

const prefix = (name, text) => String(text).replace(/^(?=.)/gm, `[${name}] `);

/** Stops every part (SIGTERM, SIGKILL after 3 s), newest first; exits. */
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  for (const { child } of [...parts].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));
process.on("SIGHUP", () => void stopAll(0));

try {
  const redisPort = await freePort();
  await start("redis", REDIS, [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--protected-mode",
    "yes",
  ], { quiet: true });
  await waitForPing(redisPort);
  const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  console.log(`redis-server: ${REDIS_URL} (temp dir ${dir})`);

  // Node 20 runs no TypeScript: bundle the worker (with bullmq and ioredis).
  const { build } = await import("esbuild");
  const bundle = join(dir, "worker.node.mjs");
  await build({
    entryPoints: [join(HERE, "worker.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "error",
    // ioredis and bullmq are CommonJS inside: give the bundle a require().
    banner: {
      js: "import { createRequire } from 'node:module'; " +
        "const require = createRequire(import.meta.url);",
    },
  });

  const ready = (line) => line.startsWith('{"ready"');
  const extraEnv = { REDIS_URL, CONCURRENCY: "1" };
  const workers = await Promise.all([
    start("worker node", process.execPath, [bundle], { ready, extraEnv }),
    start("worker bun", join(BIN, "bun"), [join(HERE, "worker.ts")], {
      ready,
      extraEnv,
    }),
  ]);
  console.log(
    `workers serving "demo-rerank": ${
      workers.map((line) => JSON.parse(line).ready).join(", ")
    }`,
  );

  let port = Number(process.env.PORT ?? 8000);
  if (!(await portFree(port))) {
    console.log(`Port ${port} is taken; using a free one.`);
    port = await freePort();
  }
  const url = await start("server", join(BIN, "deno"), [
    "run",
    "--unstable-no-legacy-abort", // as npm run demo: no legacy-signal warning
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    join(HERE, "server.ts"),
  ], {
    ready: (line) => line.startsWith("sluice cluster demo:"),
    extraEnv: {
      REDIS_URL,
      PORT: String(port),
      LATENCY_SCALE: process.env.LATENCY_SCALE ?? "1",
    },
  });
  console.log(url);
  console.log(
    'Open it, tick "re-rank on remote workers" and press Start. Ctrl-C stops everything.',
  );
} catch (error) {
  console.error(`demo:cluster: ${error.message}`);
  await stopAll(1);
}
