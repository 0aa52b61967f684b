// What `npm run demo` prints (issue 24): starts the command of package.json's
// `demo` script (its `deno` is node_modules/.bin/deno) on a free port, does a
// run to the end, a run the client leaves, and a run with `dropAfter`, then
// stops it and checks the output: the URL line, one line for the disconnect,
// one for the drop, nothing else on stdout and nothing at all on stderr (no
// Deno warning such as "request.signal aborts on successful responses
// (legacy behavior)"). Bounded: 1 minute.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import helpers from "./_cases.cjs";

const ROOT = helpers.root;
const DENO = join(ROOT, "node_modules/.bin/deno");

setTimeout(() => {
  console.error("tests/node/demo_output.test.mjs: still running after 1 minute");
  process.exit(1);
}, 60_000).unref();

/** The `deno` arguments of `npm run demo`. */
function demoArgs() {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const [cmd, ...args] = scripts.demo.trim().split(/\s+/);
  assert.equal(cmd, "deno", `npm run demo: ${scripts.demo}`);
  return args;
}

const children = new Set();
after(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Starts deno with `args`; resolves once it printed its URL. */
async function start(args) {
  if (!existsSync(DENO)) throw new Error(`deno is missing at ${DENO}: run 'npm ci'`);
  const child = spawn(DENO, args, {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", LATENCY_SCALE: "0.3", NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + 30_000;
  let base;
  while (!base) {
    base = out.stdout.match(/http:\/\/127\.0\.0\.1:\d+/)?.[0];
    if (base) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`deno did not print its URL:\n${out.stdout}${out.stderr}`);
    }
    await sleep(25);
  }
  return {
    base,
    out,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Reads an SSE response; `stopAfter` results: the client goes away then. */
async function read(res, stopAfter = Infinity) {
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text;
    text += decoder.decode(value, { stream: true });
    if ((text.match(/^event: result$/gm) ?? []).length >= stopAfter) {
      await reader.cancel();
      return text;
    }
  }
}

/** Waits until the server's stdout has `n` lines. */
async function lines(out, n) {
  const deadline = Date.now() + 5000;
  const get = () => out.stdout.split("\n").filter(Boolean);
  while (get().length < n && Date.now() < deadline) await sleep(25);
  await sleep(100); // an extra line, if any, would be here by now
  return get();
}

test("npm run demo prints its URL and one line per disconnect or drop, no warning", async () => {
  const demo = await start(demoArgs());
  try {
    // A run to the end: nothing logged.
    const full = await read(await fetch(`${demo.base}/api/to-sse?n=6`));
    assert.match(full, /^event: done$/m);
    // The client goes away after 2 results (what the page's Cancel does).
    const controller = new AbortController();
    await read(
      await fetch(`${demo.base}/api/hono-sse?n=40`, { signal: controller.signal }),
      2,
    );
    controller.abort();
    await lines(demo.out, 2);
    // A simulated network drop on the default route.
    const dropped = await read(await fetch(`${demo.base}/api/to-sse?n=10&dropAfter=3`));
    assert.equal((dropped.match(/^event: result$/gm) ?? []).length, 3);
    assert.doesNotMatch(dropped, /^event: (done|error)$/m);
    const got = await lines(demo.out, 3);
    assert.equal(got.length, 3, got.join("\n"));
    assert.match(got[0], /^sluice SSE demo \(Deno\): http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(
      got[1],
      /^run #2 \(hono-sse\): the client went away after \d+ results? of 40; \d+ calls? in flight aborted$/,
    );
    assert.equal(
      got[2],
      "run #3 (to-sse): dropped the connection after 3 results (dropAfter=3); the client resumes after #2",
    );
  } finally {
    await demo.stop();
  }
  assert.equal(demo.out.stderr, "", "nothing on stderr");
  assert.doesNotMatch(demo.out.stdout, /warn|legacy|error/i);
});

test("without the demo's flags, Deno would warn (what the first test rules out)", async (t) => {
  // Drop the --unstable-* flags: the warning the demo must not print comes
  // back (on Deno 2.9). If it does not, the flag may no longer be needed.
  const demo = await start(demoArgs().filter((a) => !a.startsWith("--unstable-")));
  try {
    await read(await fetch(`${demo.base}/api/to-sse?n=2`));
  } finally {
    await demo.stop();
  }
  if (/request\.signal aborts on successful responses/.test(demo.out.stderr)) {
    t.diagnostic("without --unstable-no-legacy-abort, Deno warns: the flag is needed");
  } else {
    t.diagnostic(`no warning without the flag (stderr: ${JSON.stringify(demo.out.stderr)}): it may no longer be needed`);
  }
});
