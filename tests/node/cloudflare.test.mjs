// sluice/cloudflare under Miniflare: bundles tests/cloudflare/worker.ts with
// esbuild (against the built npm package: npm/esm/cloudflare.js) and runs it
// in workerd with a queue (producer and consumer), its dead-letter queue and
// the SluiceRun Durable Object. No network: Miniflare's queue broker and
// Durable Objects run locally, reached through dispatchFetch. Then checks
// examples/cloudflare/ with `wrangler deploy --dry-run` (offline).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleWorker, Miniflare } from "./_workerd.mjs";
import helpers from "./_cases.cjs";

const script = await bundleWorker("tests/cloudflare/worker.ts");

const MAX_RETRIES = 2;
const mf = new Miniflare({
  modules: true,
  script,
  host: "127.0.0.1",
  compatibilityDate: "2026-04-01",
  compatibilityFlags: ["enable_request_signal"],
  queueProducers: { SLUICE_QUEUE: "sluice-tasks" },
  queueConsumers: {
    "sluice-tasks": {
      maxBatchSize: 10,
      maxBatchTimeout: 0.05,
      maxRetries: MAX_RETRIES,
      deadLetterQueue: "sluice-dlq",
    },
    "sluice-dlq": { maxBatchSize: 10, maxBatchTimeout: 0.05 },
  },
  durableObjects: { SLUICE_RUNS: "TestRun" },
});
after(() => mf.dispose());

const url = (runId, action) => `http://localhost/runs/${runId}/${action}`;

async function start(runId, input) {
  const res = await mf.dispatchFetch(url(runId, "start"), {
    method: "POST",
    body: JSON.stringify(input),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return res.json();
}

async function status(runId) {
  return (await mf.dispatchFetch(url(runId, "status"))).json();
}

/** Parses an event stream's text into events `{ event, id, data }`. */
function parse(text) {
  return text.split("\n\n").filter((block) => block.trim() !== "" && !block.startsWith(":"))
    .map((block) => {
      const e = { event: "message", id: undefined, data: "" };
      for (const line of block.split("\n")) {
        const [field, ...rest] = line.split(": ");
        const value = rest.join(": ");
        if (field === "event") e.event = value;
        else if (field === "id") e.id = value;
        else if (field === "data") e.data += value;
      }
      return e;
    });
}

/**
 * Reads the run's events until the stream ends, or until `until(events)`
 * holds (then the connection is dropped); fails after `ms`.
 */
async function readEvents(runId, { lastEventId, until, ms = 20_000 } = {}) {
  const res = await mf.dispatchFetch(url(runId, "events"), {
    headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no end of the event stream of ${runId} within ${ms} ms: ${text.slice(-300)}`)), ms);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), timeout]);
      if (done) return { events: parse(text), ended: true };
      text += value;
      const complete = text.slice(0, text.lastIndexOf("\n\n") + 2);
      if (until && until(parse(complete))) {
        await reader.cancel();
        return { events: parse(complete), ended: false };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

const results = (events) => events.filter((e) => e.event === "message");

async function eventually(check, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test("cloudflare: the worker bundle takes sluice/cloudflare from npm/esm/cloudflare.js", () => {
  assert.match(script, /npm\/esm\/cloudflare\.js/);
});

test("remote() 200 items through a queue stage in several consumer batches: every result over SSE in input order, once each", { timeout: 60_000 }, async () => {
  await start("run-200", { n: 200, task: "square", concurrency: 64 });
  const { events, ended } = await readEvents("run-200");
  assert(ended);
  const data = results(events);
  assert.deepEqual(data.map((e) => e.id), Array.from({ length: 200 }, (_, i) => String(i)));
  assert.deepEqual(data.map((e) => JSON.parse(e.data)), Array.from({ length: 200 }, (_, i) => i * i));
  assert.equal(events.at(-1).event, "done");
  const s = await status("run-200");
  assert.equal(s.status, "done");
  assert.equal(s.results, 200);
  assert.equal(s.recorded, 200);
  assert(s.batches >= 20, `${s.batches} consumer batches (max_batch_size 10)`);
});

test("consume() a task that throws: retried up to max_retries, then dead-lettered, and the item fails in the flow (onError: skip) with a DeadLetterError", { timeout: 60_000 }, async () => {
  await start("run-flaky", { n: 30, task: "flaky" });
  const { events, ended } = await readEvents("run-flaky");
  assert(ended);
  const bad = [7, 17, 27];
  const good = Array.from({ length: 30 }, (_, i) => i).filter((i) => !bad.includes(i));
  assert.deepEqual(results(events).map((e) => JSON.parse(e.data)), good.map((i) => i * i));
  assert.equal(events.at(-1).event, "done");
  const s = await status("run-flaky");
  assert.deepEqual(s.failures.map((f) => f.itemId), bad);
  for (const { itemId, error } of s.failures) {
    assert.equal(error.name, "DeadLetterError");
    assert.equal(
      error.message,
      `item ${itemId} of run "run-flaky" failed for good in task "flaky": moved to the dead-letter queue "sluice-dlq" after ${MAX_RETRIES + 1} attempts; last error: RangeError: no ${itemId} (attempt ${MAX_RETRIES + 1})`,
    );
  }
});

test("SluiceRun abort mid-run: the stream ends with event: error, unstarted messages are dropped and late results discarded", { timeout: 60_000 }, async () => {
  await start("run-abort", { n: 200, task: "slow", concurrency: 20 });
  const first = await readEvents("run-abort", { until: (events) => results(events).length >= 10 });
  assert(!first.ended);
  const res = await mf.dispatchFetch(url("run-abort", "abort"), { method: "POST" });
  assert.equal((await res.json()).status, "aborted");
  const { events, ended } = await readEvents("run-abort");
  assert(ended);
  const last = events.at(-1);
  assert.equal(last.event, "error");
  assert.equal(JSON.parse(last.data).name, "AbortError");
  const kept = results(events).length;
  assert(kept >= 10 && kept < 200, `${kept} results`);
  // Messages sent before the abort reach the consumer and are dropped
  // (acknowledged without running) or, if already running, discarded.
  const s = await eventually(async () => {
    const s = await status("run-abort");
    assert(s.dropped + s.discarded > 0, JSON.stringify(s));
    return s;
  });
  assert.equal(s.status, "aborted");
  assert.equal(s.results, kept);
  await new Promise((r) => setTimeout(r, 300));
  const later = await status("run-abort");
  assert.equal(later.results, kept);
  assert.equal(later.recorded, s.recorded);
});

test("SluiceRun events: a dropped SSE connection resumes with Last-Event-ID, each result once", { timeout: 60_000 }, async () => {
  await start("run-resume", { n: 60, task: "slow", concurrency: 10 });
  const first = await readEvents("run-resume", { until: (events) => results(events).length >= 5 });
  assert(!first.ended);
  const lastId = results(first.events).at(-1).id;
  const rest = await readEvents("run-resume", { lastEventId: lastId });
  assert(rest.ended);
  assert.equal(rest.events.at(-1).event, "done");
  const all = [...results(first.events), ...results(rest.events)];
  assert.deepEqual(all.map((e) => e.id), Array.from({ length: 60 }, (_, i) => String(i)));
  assert.deepEqual(all.map((e) => JSON.parse(e.data)), Array.from({ length: 60 }, (_, i) => i * i));
  const bad = await mf.dispatchFetch(url("run-resume", "events"), { headers: { "last-event-id": "x" } });
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});

test("consume() a message delivered twice gives one result", { timeout: 60_000 }, async () => {
  await start("run-dup", { n: 20, task: "square", duplicate: true });
  const { events, ended } = await readEvents("run-dup");
  assert(ended);
  assert.deepEqual(results(events).map((e) => JSON.parse(e.data)), Array.from({ length: 20 }, (_, i) => i * i));
  // The second copies are delivered too (some maybe after the run ended),
  // and each is acknowledged without a second result.
  const s = await eventually(async () => {
    const s = await status("run-dup");
    assert.equal(s.duplicates, 20, JSON.stringify(s));
    return s;
  });
  assert.equal(s.results, 20);
  assert.equal(s.recorded, 20);
});

/** Runs `file args` and resolves with its output; fails after `ms`. */
function run(file, args, options) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, ...options }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

test("examples/cloudflare: `wrangler deploy --dry-run` bundles the worker offline, with its queue and Durable Object bindings", { timeout: 90_000 }, async () => {
  const example = join(helpers.root, "examples/cloudflare");
  const scratch = join(example, ".wrangler");
  const hadScratch = readdirSync(example).includes(".wrangler");
  const tmp = mkdtempSync(join(tmpdir(), "sluice-wrangler-"));
  try {
    const wrangler = join(helpers.root, "node_modules/.bin/wrangler");
    const args = ["deploy", "--dry-run", "--outdir", join(tmp, "out")];
    // Without any network when the system allows it (a user and network
    // namespace): the dry run must not need Cloudflare.
    const isolated = await run("unshare", ["-rn", "true"]).then(() => true, () => false);
    const env = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", HOME: tmp, NO_COLOR: "1" };
    const { stdout } = isolated
      ? await run("unshare", ["-rn", wrangler, ...args], { cwd: example, env })
      : await run(wrangler, args, { cwd: example, env });
    assert.match(stdout, /env\.SLUICE_RUNS \(Runs\)\s+Durable Object/);
    assert.match(stdout, /env\.SLUICE_QUEUE \(sluice-tasks\)\s+Queue/);
    assert.match(stdout, /--dry-run: exiting now/);
    const { readFileSync } = await import("node:fs");
    const bundle = readFileSync(join(tmp, "out/worker.js"), "utf8");
    assert.match(bundle, /var Runs = class extends SluiceRun/);
    assert.match(bundle, /export \{[^}]*\bRuns\b[^}]*\}/);
    assert.doesNotMatch(bundle, /^import .* from "node:|require\("node:/m, "no Node built-in (no nodejs_compat)");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    if (!hadScratch) rmSync(scratch, { recursive: true, force: true });
  }
});
