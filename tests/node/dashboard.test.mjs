// The <sluice-dashboard> element (web/sluice-dashboard.js) in headless
// Chromium, fed by a real run: a 127.0.0.1 server started and stopped here
// serves a page holding the element, the element's module, and `/events`:
// `toSSE(flow, { progressMs, progress: "compact" })` over a demo-like
// pipeline of the built npm package (npm/, as `sluice`). Checks that the
// figures appear, the lanes change while the run goes, the histogram and the
// sparkline are drawn, the run ends "done" with one connection, and nothing
// reaches the console.
//
// `SLUICE_DASHBOARD_SCREENSHOT=docs/dashboard-browser.png` also saves a
// screenshot of the element mid-run there (the docs').
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const { batch, flatten, map, pipeline, SSE_HEADERS, toSSE } = await import("sluice");

// Nothing here may outlive the file; if something does, fail instead of hanging.
setTimeout(() => {
  console.error("tests/node/dashboard.test.mjs: still running after 3 minutes");
  process.exit(1);
}, 180_000).unref();

const N = 60;
/** A simulated call of `ms` ms that stops when `signal` aborts. */
const wait = (ms, signal) =>
  new Promise((resolve, reject) => {
    const aborted = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", aborted);
      resolve();
    }, ms);
    signal.addEventListener("abort", aborted, { once: true });
  });

/** The demo's shape: uneven retrieval, batches re-ranked, then enriched. */
const rag = pipeline(
  map((i, ctx) => wait(40 + ((i * 37) % 9) * 25, ctx.signal).then(() => i), {
    name: "retrieve",
    concurrency: 4,
  }),
  batch({ name: "batch", maxSize: 4, maxWaitMs: 60 }),
  map((group, ctx) => wait(60 + 20 * group.length, ctx.signal).then(() => group), {
    name: "rerank",
    concurrency: 2,
  }),
  flatten(),
  map((i, ctx) => wait(30 + (i % 4) * 15, ctx.signal).then(() => i), {
    name: "enrich",
    concurrency: 3,
  }),
);

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loading</title>
<style>body { margin: 0; padding: 12px; width: 640px; background: #f6f8fb; }</style>
</head><body>
<sluice-dashboard src="/events" total="${N}"></sluice-dashboard>
<script type="module">
import "/sluice-dashboard.js";
await customElements.whenDefined("sluice-dashboard");
document.title = "ready";
</script>
</body></html>`;

let connections = 0;
const progressBytes = [];
const server = createServer(async (req, res) => {
  const { pathname } = new URL(req.url, "http://x");
  if (pathname === "/") {
    return res.writeHead(200, { "content-type": "text/html" }).end(page);
  }
  if (pathname === "/sluice-dashboard.js") {
    return res.writeHead(200, { "content-type": "text/javascript" })
      .end(readFileSync(join(helpers.root, "web/sluice-dashboard.js")));
  }
  if (pathname === "/favicon.ico") return res.writeHead(204).end();
  if (pathname !== "/events") return res.writeHead(404).end();
  connections++;
  const flow = rag.run(Array.from({ length: N }, (_, i) => i));
  const reader = toSSE(flow, { progressMs: 100, progress: "compact" }).getReader();
  res.writeHead(200, SSE_HEADERS);
  req.on("close", () => void reader.cancel().catch(() => {}));
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const text = decoder.decode(value);
    if (text.startsWith("event: progress")) progressBytes.push(value.length);
    res.write(value);
  }
  res.end();
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  throw new Error(`Chromium is missing (${executablePath}): apt-get install -y chromium`);
}
const { chromium } = await import("playwright-core");
const profile = mkdtempSync(join(tmpdir(), "sluice-dashboard-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 680, height: 420 },
  deviceScaleFactor: 1,
});
after(async () => {
  await context.close();
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
  rmSync(profile, { recursive: true, force: true });
});

const browserPage = context.pages()[0] ?? await context.newPage();
const messages = []; // console errors and warnings, page errors
browserPage.on("pageerror", (error) => messages.push(`pageerror: ${error}`));
browserPage.on("console", (msg) => {
  if (msg.type() === "error" || msg.type() === "warning") {
    messages.push(`${msg.type()}: ${msg.text()}`);
  }
});
await browserPage.goto(`${origin}/`);
await browserPage.waitForFunction(() => document.title === "ready", null, { timeout: 20_000 });

/** What the element shows now, read from its shadow DOM. */
const read = () =>
  browserPage.evaluate(() => {
    const el = document.querySelector("sluice-dashboard");
    const root = el.shadowRoot;
    const figure = (name) => root.querySelector(`.totals [data-figure="${name}"]`)?.textContent;
    return {
      state: el.dataset.state,
      itemsIn: figure("itemsIn"),
      itemsOut: figure("itemsOut"),
      rate: figure("rate"),
      lanes: [...root.querySelectorAll(".lane")].map((lane) => ({
        stage: lane.dataset.stage,
        workers: [...lane.querySelectorAll(".workers i")].map((i) => i.className === "busy" ? 1 : 0).join(""),
        queued: lane.querySelector('[data-figure="queued"]').textContent,
        completed: lane.querySelector('[data-figure="completed"]').textContent,
        latency: lane.querySelector('[data-figure="latency"]').textContent,
      })),
      bars: [...root.querySelectorAll(".hist rect")].map((r) => Number(r.getAttribute("height"))),
      labels: [...root.querySelectorAll(".hist text")].map((t) => t.textContent),
      sparkPoints: root.querySelector(".spark polyline").getAttribute("points") ?? "",
      samples: Number(root.querySelector(".spark svg").dataset.samples ?? 0),
    };
  });

let first;

test("dashboard: the figures and one lane per stage appear", async () => {
  await browserPage.waitForFunction(() => {
    const el = document.querySelector("sluice-dashboard");
    return el.snapshot && el.snapshot.itemsIn > 0 && el.snapshot.stages[0].completed > 0;
  }, null, { timeout: 20_000 });
  first = await read();
  assert.equal(first.state, "running");
  assert.deepEqual(first.lanes.map((l) => l.stage), ["retrieve", "batch", "rerank", "flatten#4", "enrich"]);
  assert.equal(first.lanes[0].workers.length, 4, "retrieve: 4 worker cells");
  assert.equal(first.lanes[2].workers.length, 2, "rerank: 2 worker cells");
  assert.match(first.lanes[1].queued, /^forming \d+$/);
  assert.match(first.lanes[0].queued, /^queued \d+$/);
  assert.ok(Number(first.itemsIn) > 0);
  assert.match(first.itemsOut, new RegExp(`^\\d+ / ${N}$`));
  assert.match(first.lanes[0].latency, /^p50 [\d.]+ · p95 [\d.]+ ms$/);
});

test("dashboard: the lanes update while the run goes", async () => {
  const seen = new Set([JSON.stringify(first.lanes)]);
  for (let i = 0; i < 6 && seen.size < 3; i++) {
    await sleep(300);
    seen.add(JSON.stringify((await read()).lanes));
  }
  const later = await read();
  assert.ok(seen.size >= 3, `the lanes changed ${seen.size - 1} times`);
  const done = (s) => Number(s.lanes[0].completed.replace(/\D.*$/, ""));
  assert.ok(done(later) > done(first), `retrieve completed ${done(first)} → ${done(later)}`);
});

test("dashboard: the latency histogram and the throughput sparkline are drawn", async () => {
  await browserPage.waitForFunction(() => {
    const el = document.querySelector("sluice-dashboard");
    return Number(el.shadowRoot.querySelector(".spark svg").dataset.samples) >= 4 &&
      el.snapshot.latency.count > 0;
  }, null, { timeout: 20_000 });
  const now = await read();
  assert.equal(now.bars.length, 4);
  assert.ok(now.bars.every((h) => h > 0));
  assert.ok(now.bars[3] >= now.bars[0], "max at least p50");
  // Each bar: its value above it, its name under it.
  assert.deepEqual(now.labels.filter((_, i) => i % 2 === 1), ["p50", "p95", "p99", "max"]);
  assert.ok(now.labels.filter((_, i) => i % 2 === 0).every((v) => /^[\d.,]+$/.test(v)), String(now.labels));
  assert.ok(now.sparkPoints.split(" ").length >= 4, now.sparkPoints);
  const shot = process.env.SLUICE_DASHBOARD_SCREENSHOT;
  if (shot && now.state === "running") {
    await browserPage.locator("sluice-dashboard").screenshot({ path: join(helpers.root, shot) });
  }
});

test("dashboard: the run ends done, on one connection, with compact progress events", async () => {
  await browserPage.waitForFunction(
    () => document.querySelector("sluice-dashboard").dataset.state !== "running",
    null,
    { timeout: 30_000 },
  );
  const end = await read();
  assert.equal(end.state, "done");
  assert.equal(end.itemsOut, `${N} / ${N}`);
  await sleep(300); // an EventSource left open would reconnect here
  assert.equal(connections, 1, "the element closed its EventSource after done");
  const average = progressBytes.reduce((a, b) => a + b, 0) / progressBytes.length;
  assert.ok(progressBytes.length >= 5, `${progressBytes.length} progress events`);
  assert.ok(average < 400, `progress events average ${Math.round(average)} B`);
});

test("dashboard: nothing reaches the console (no error, no warning)", () => {
  assert.deepEqual(messages, []);
});
