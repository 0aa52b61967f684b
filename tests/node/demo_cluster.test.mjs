// Smoke test of `npm run demo:cluster` (examples/cluster/run.mjs): starts the
// runner (its own redis-server, a Node and a Bun worker, the Deno SSE server)
// on free ports, asks for a run with the remote re-rank over SSE, checks the
// results arrive in input order and that two different worker processes
// served them, then stops the runner with SIGTERM and checks that no process
// it started is left and its temp dir is gone. Bounded: 2 minutes.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import helpers from "./_cases.cjs";

const RUNNER = join(helpers.root, "examples/cluster/run.mjs");
let runner;
const seen = new Set();
after(() => {
  if (runner?.exitCode === null) runner.kill("SIGKILL");
  for (const pid of seen) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
});

/** The processes descending from `root` now (Linux /proc). */
function descendants(root) {
  const parent = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(entry), ppid);
    } catch { /* exited meanwhile */ }
  }
  const out = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Reads an SSE response to its end: [{ event, id, data }]. */
async function readSSE(response) {
  const events = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const e = { event: "message", data: "" };
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") e.event = value;
        else if (field === "id") e.id = value;
        else if (field === "data") e.data += value;
      }
      events.push(e);
      if (e.event === "done" || e.event === "error") return events;
    }
  }
  return events;
}

test("demo:cluster: remote re-rank over SSE, two worker processes, clean stop", { timeout: 120_000 }, async () => {
  runner = spawn(process.execPath, [RUNNER], {
    cwd: helpers.root,
    env: { ...process.env, PORT: "0", LATENCY_SCALE: "0.5", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  runner.stdout.on("data", (d) => (output += d));
  runner.stderr.on("data", (d) => (output += d));
  const exited = new Promise((resolve) => runner.once("exit", (code, signal) => resolve({ code, signal })));

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 60 s:\n${output}`)), 60_000);
    const check = () => {
      const m = /sluice cluster demo: (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    runner.stdout.on("data", check);
    exited.then(({ code }) => reject(new Error(`the runner exited (${code}):\n${output}`)));
  });
  const workers = /workers serving "demo-rerank": (.*)/.exec(output)[1].split(", ");
  assert.deepEqual(workers.map((w) => w.split("#")[0]).sort(), ["bun", "node"]);
  const tempDir = /temp dir ([^)]+)\)/.exec(output)[1];
  assert.ok(existsSync(tempDir));
  const pids = descendants(runner.pid);
  for (const pid of pids) seen.add(pid);
  assert.ok(pids.length >= 4, `redis, 2 workers and the server: ${pids}`);

  assert.deepEqual(await (await fetch(`${url}/api/config`)).json(), { remoteRerank: true });
  const n = 24;
  const response = await fetch(`${url}/api/to-sse?n=${n}&rerank=remote`, {
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(response.status, 200);
  const events = await readSSE(response);
  assert.equal(events.at(-1).event, "done", JSON.stringify(events.at(-1)));
  const results = events.filter((e) => e.event === "result").map((e) => JSON.parse(e.data));
  assert.deepEqual(results.map((r) => r.index), Array.from({ length: n }, (_, i) => i));
  const servedBy = new Set(results.map((r) => r.servedBy));
  assert.ok(servedBy.size >= 2, `served by ${[...servedBy]}`);
  for (const who of servedBy) assert.ok(workers.includes(who), `${who} is one of ${workers}`);
  const { runs } = await (await fetch(`${url}/api/stats`)).json();
  assert.equal(runs.at(-1).rerank, "remote");
  assert.equal(runs.at(-1).status, "done");

  runner.kill("SIGTERM");
  const stop = await Promise.race([
    exited,
    new Promise((resolve) => setTimeout(() => resolve("timeout"), 15_000).unref()),
  ]);
  assert.deepEqual(stop, { code: 0, signal: null }, output);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(pids.filter(alive), [], "no process left");
  assert.equal(existsSync(tempDir), false, "temp dir removed");
});
