/**
 * Runtime tests of the SSE examples (examples/hono/): the same Hono app on
 * Deno (Deno.serve), Node (@hono/node-server), Bun (Bun.serve) and workerd
 * (Miniflare's dispatchFetch), each started here on 127.0.0.1 and stopped at
 * the end; then the demo page in Chromium (playwright-core).
 *
 * For each runtime and both SSE routes (`toSSE()` and Hono's `streamSSE`):
 * - results arrive one by one, spread over time, in input order, ids = index;
 * - a request with `Last-Event-ID` resumes after that index;
 * - closing the connection mid-stream aborts every call in flight (each saw
 *   `ctx.signal.aborted`), nothing starts afterwards, and no timer is left;
 *   the server logs it in one line;
 * - `dropAfter=K` ends the stream after K results without a final event,
 *   stops the run (one log line) and the next request resumes.
 * Deno runs `npm run demo`'s command (package.json), flags included.
 * In Chromium: the list grows in several steps, the bar reaches 100 % and the
 * colour legend stays visible, dropped connections resume in order on both
 * routes, Cancel stops the server's flow, counts of one read in the singular,
 * and nothing reaches the console or fails to load (the favicon is inline).
 *
 * Run: `node --test tests/hono/run.mjs` (Node 20+). Every runtime must be
 * there (`npm ci`, and /usr/bin/chromium): a missing one fails, never skips.
 * The page's screenshot at the end of a run is saved in a temporary folder
 * (its path is printed); `SLUICE_SCREENSHOT=docs/demo.png` also saves one
 * taken halfway through the run there (the README's).
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HONO = join(ROOT, "examples/hono");
const DENO = join(ROOT, "node_modules/.bin/deno");
const BUN = join(ROOT, "node_modules/.bin/bun");
const CHROMIUM = "/usr/bin/chromium";
/** Latency scale of the API tests: a 16-query run takes about 0.6 s. */
const SCALE = 0.5;
/** The browser test spaces results further apart (2 cores, a real browser). */
const BROWSER_SCALE = 2.5;

// Nothing here may outlive its test; if something does, fail instead of hanging.
setTimeout(() => {
  console.error("tests/hono/run.mjs: still running after 8 minutes; giving up");
  process.exit(1);
}, 8 * 60_000).unref();

const tmp = await mkdtemp(join(tmpdir(), "sluice-hono-"));
after(() => rm(tmp, { recursive: true, force: true }));

// ---- servers ------------------------------------------------------------------

/**
 * A running server: `fetch(path, init)` and `stop()`.
 * @typedef {{ name: string, fetch: (path: string, init?: RequestInit) => Promise<Response>, stop: () => Promise<void>, output: () => string }} Target
 */

function need(path, what) {
  if (!existsSync(path)) {
    throw new Error(
      `${what} is missing at ${path}: run 'npm ci' (and install chromium)`,
    );
  }
}

/** Starts `cmd args` and waits for the URL it prints. @returns {Promise<Target>} */
async function spawnServer(name, cmd, args, env = {}) {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: "0",
      LATENCY_SCALE: String(SCALE),
      SLUICE_TRACK_TIMERS: "1",
      NO_COLOR: "1",
      RUST_BACKTRACE: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + 30_000;
  let base;
  while (!base) {
    const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
    if (m) base = m[0].slice(0, -1);
    else if (child.exitCode !== null) {
      throw new Error(
        `${name} exited (${child.exitCode}) before listening:\n${out}`,
      );
    } else if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} did not print its URL within 30 s:\n${out}`);
    } else await sleep(25);
  }
  return {
    name,
    base,
    fetch: (path, init) => fetch(base + path, init),
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const killed = await Promise.race([exited, sleep(5000, "timeout")]);
      if (killed === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

async function bundle(entry, outfile, platform) {
  await build({
    entryPoints: [join(HONO, entry)],
    outfile,
    bundle: true,
    format: "esm",
    platform,
    conditions: platform === "browser" ? ["workerd", "worker"] : [],
    // The Node entry finds static/index.html next to its source.
    define: platform === "node"
      ? {
        "import.meta.url": JSON.stringify(
          pathToFileURL(join(HONO, entry)).href,
        ),
      }
      : {},
    logLevel: "silent",
  });
  return outfile;
}

/** The arguments of `npm run demo`'s `deno` command (package.json). */
function demoArgs() {
  const { scripts } = JSON.parse(
    readFileSync(join(ROOT, "package.json"), "utf8"),
  );
  const [cmd, ...args] = scripts.demo.trim().split(/\s+/);
  assert.equal(cmd, "deno", `npm run demo: ${scripts.demo}`);
  return args;
}

const RUNTIMES = {
  deno: () => {
    need(DENO, "deno");
    return spawnServer("deno", DENO, demoArgs());
  },
  node: async () => {
    const out = await bundle("node.ts", join(tmp, "node.mjs"), "node");
    return spawnServer("node", process.execPath, [out]);
  },
  bun: () => {
    need(BUN, "bun");
    return spawnServer("bun", BUN, ["examples/hono/bun.ts"]);
  },
  workerd: async () => {
    const scriptPath = await bundle(
      "worker.ts",
      join(tmp, "worker.mjs"),
      "browser",
    );
    const { Miniflare } = await import("miniflare");
    const mf = new Miniflare({
      modules: true,
      scriptPath,
      modulesRoot: tmp,
      compatibilityDate: "2026-04-01",
      // As in wrangler.toml: without it, workerd drops a request whose client
      // went away without cancelling its response body (the flow would freeze
      // instead of aborting).
      compatibilityFlags: ["enable_request_signal"],
      bindings: { LATENCY_SCALE: String(SCALE), SLUICE_TRACK_TIMERS: "1" },
      // wrangler.toml's [assets]: static/ at "/", the worker for the rest.
      assets: {
        directory: join(HONO, "static"),
        routerConfig: { has_user_worker: true },
      },
    });
    try {
      await mf.ready;
    } catch (error) {
      await mf.dispose().catch(() => {});
      throw error;
    }
    return {
      name: "workerd",
      fetch: (path, init) => mf.dispatchFetch(`http://localhost${path}`, init),
      output: () => "",
      stop: () => mf.dispose(),
    };
  },
};

// ---- reading an event stream ------------------------------------------------

/**
 * Reads Server-Sent Events from `res`, each with its arrival time (ms since
 * `t0`). `stop(events)` returning true ends the read early (and cancels).
 */
async function readEvents(res, t0, stop = () => false) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events = [];
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const at = performance.now() - t0;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const e = { event: "message", id: undefined, data: undefined, at };
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue; // a comment, or nothing
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") {
          e.data = e.data === undefined ? value : `${e.data}\n${value}`;
        } else if (field === "event") e.event = value;
        else if (field === "id") e.id = value;
      }
      if (e.data !== undefined) events.push(e);
    }
    if (stop(events)) {
      await reader.cancel().catch(() => {});
      return events;
    }
  }
  return events;
}

const results = (events) => events.filter((e) => e.event === "result");
const range = (from, to) =>
  Array.from({ length: to - from }, (_, i) => from + i);

/**
 * The server's log lines about run `id` (waiting up to 2 s for the first),
 * or `null` when the target's output is not captured (workerd).
 */
async function logLines(target, id) {
  if (target.name === "workerd") return null;
  const mine = () =>
    target.output().split("\n").filter((l) => l.startsWith(`run #${id} `));
  const deadline = Date.now() + 2000;
  while (mine().length === 0 && Date.now() < deadline) await sleep(25);
  await sleep(50); // a second line, if any, would be here by now
  return mine();
}

async function serverStats(target) {
  const res = await target.fetch("/api/stats");
  return await res.json();
}

/** Polls until the last run has settled; returns it with the timer list. */
async function settledRun(target, route) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { runs, timers } = await serverStats(target);
    const run = runs.filter((r) => r.route === route).at(-1);
    if (run && run.status !== "running" && timers.length === 0) {
      return { run, timers };
    }
    if (Date.now() > deadline) return { run, timers };
    await sleep(50);
  }
}

// ---- the runtimes -----------------------------------------------------------

for (const runtime of Object.keys(RUNTIMES)) {
  describe(`SSE on ${runtime}`, { timeout: 120_000 }, () => {
    /** @type {Target} */
    let target;
    before(async () => {
      target = await RUNTIMES[runtime]();
    });
    after(async () => {
      await target?.stop();
    });

    test("GET / serves the page", async () => {
      const res = await target.fetch("/");
      assert.equal(res.status, 200);
      assert.match(
        await res.text(),
        /<title>sluice · results over Server-Sent Events<\/title>/,
      );
    });

    for (const route of ["to-sse", "hono-sse"]) {
      test(`${route}: results arrive one by one, in input order`, async (t) => {
        const n = 16;
        const t0 = performance.now();
        const events = await readEvents(
          await target.fetch(`/api/${route}?n=${n}`),
          t0,
        );
        const got = results(events);
        assert.deepEqual(got.map((e) => JSON.parse(e.data).index), range(0, n));
        assert.deepEqual(got.map((e) => e.id), range(0, n).map(String));
        const done = events.at(-1);
        assert.equal(done.event, "done");
        assert.equal(JSON.parse(done.data).itemsOut, n);
        assert(events.some((e) => e.event === "progress"), "progress events");

        const at = got.map((e) => Math.round(e.at));
        const groups = at.filter((x, i) =>
          i === 0 || x - at[i - 1] > 15
        ).length;
        t.diagnostic(
          `${runtime} ${route}: arrivals (ms) ${
            at.join(" ")
          }; ${groups} groups`,
        );
        assert(
          groups >= 4,
          `results arrived in ${groups} groups: ${at.join(" ")}`,
        );
        assert(
          at[0] < 0.75 * at.at(-1),
          `first at ${at[0]} ms, last at ${at.at(-1)} ms`,
        );
        assert(at.at(-1) - at[0] >= 150, `spread ${at.at(-1) - at[0]} ms`);
      });

      test(`${route}: resumes after Last-Event-ID`, async () => {
        const res = await target.fetch(`/api/${route}?n=10`, {
          headers: { "Last-Event-ID": "6" },
        });
        const events = await readEvents(res, performance.now());
        const got = results(events);
        assert.deepEqual(got.map((e) => JSON.parse(e.data).index), [7, 8, 9]);
        assert.deepEqual(got.map((e) => e.id), ["7", "8", "9"]);
        assert.equal(events.at(-1).event, "done");
        const { run } = await settledRun(target, route);
        assert.equal(run.from, 7);
        assert.equal(run.status, "done");
        assert.equal(run.delivered, 3);
      });

      test(`${route}: dropAfter=3 drops the connection after 3 results, then resumes`, async () => {
        const n = 10;
        const first = await readEvents(
          await target.fetch(`/api/${route}?n=${n}&dropAfter=3`),
          performance.now(),
        );
        assert.deepEqual(
          results(first).map((e) => e.id),
          ["0", "1", "2"],
        );
        assert(
          !first.some((e) => e.event === "done" || e.event === "error"),
          "no final event: the connection just ends",
        );
        const { run, timers } = await settledRun(target, route);
        assert.equal(run.status, "stopped");
        assert.equal(run.droppedAfter, 3);
        assert.equal(run.running, 0);
        assert.equal(run.startedAfterAbort, 0);
        assert.deepEqual(timers, [], "no timer left");
        const lines = await logLines(target, run.id);
        if (lines) {
          assert.deepEqual(lines, [
            `run #${run.id} (${route}): dropped the connection after 3 results (dropAfter=3); the client resumes after #2`,
          ]);
        }
        // The browser's reconnection: Last-Event-ID of the last result.
        const next = await readEvents(
          await target.fetch(`/api/${route}?n=${n}&dropAfter=3`, {
            headers: { "Last-Event-ID": "2" },
          }),
          performance.now(),
        );
        assert.deepEqual(results(next).map((e) => e.id), ["3", "4", "5"]);
        // The last stretch ends with "done", not with a drop.
        const last = await readEvents(
          await target.fetch(`/api/${route}?n=${n}&dropAfter=4`, {
            headers: { "Last-Event-ID": "5" },
          }),
          performance.now(),
        );
        assert.deepEqual(results(last).map((e) => e.id), ["6", "7", "8", "9"]);
        assert.equal(last.at(-1).event, "done");
        const { run: ended } = await settledRun(target, route);
        assert.equal(ended.status, "done");
        assert.deepEqual(await logLines(target, ended.id) ?? [], []);
      });

      // How the disconnect reaches the handler: "both" (the app as written:
      // the body's cancel and request.signal), or "cancel" alone (only the
      // response body's cancel: toSSE's and streamSSE's own path). workerd
      // never cancels the body of a request whose client went away (it drops
      // the request: timers stop firing, the flow freezes); it only aborts
      // request.signal (enable_request_signal), so it runs "both" only.
      for (const via of runtime === "workerd" ? ["both"] : ["both", "cancel"]) {
        const query = via === "cancel" ? "&requestSignal=0" : "";
        test(`${route}: a disconnect (${via === "both" ? "body cancel + request.signal" : "body cancel alone"}) aborts every call in flight, leaves no timer`, async (t) => {
          const controller = new AbortController();
          const res = await target.fetch(`/api/${route}?n=60${query}`, {
            signal: controller.signal,
          });
          const events = await readEvents(res, performance.now(), (ev) =>
            results(ev).length >= 2);
          controller.abort(); // the client goes away mid-stream
          assert.equal(results(events).length, 2);
          const { run, timers } = await settledRun(target, route);
          t.diagnostic(`${runtime} ${route} (${via}): ${JSON.stringify(run)}`);
          assert.equal(run.status, "stopped", "the flow was stopped");
          assert(run.aborted >= 1, "calls in flight saw ctx.signal.aborted");
          assert.equal(run.running, 0, "no call still running");
          assert.equal(
            run.started,
            run.finished + run.aborted,
            "every call ended",
          );
          assert.equal(
            run.startedAfterAbort,
            0,
            "nothing started after the abort",
          );
          assert(run.delivered < 60);
          assert.deepEqual(timers, [], "no timer left");
          const lines = await logLines(target, run.id);
          if (lines) {
            assert.equal(lines.length, 1, lines.join("\n"));
            const count = (k, noun) =>
              `${k} ${noun}${k === 1 ? "" : "s"}`;
            assert.equal(
              lines[0],
              `run #${run.id} (${route}): the client went away after ${
                count(run.delivered, "result")
              } of 60; ${count(run.aborted, "call")} in flight aborted`,
            );
          }
        });
      }
    }
  });
}

// ---- the page in Chromium -----------------------------------------------------

describe("the demo page in Chromium", { timeout: 180_000 }, () => {
  /** @type {Target} */
  let server;
  let context;
  let page;
  let profile;
  /** Console errors and failed requests, checked after each test. */
  const problems = [];
  /** Every URL the page asked for. */
  const requested = [];

  afterEach(() => {
    assert.deepEqual(problems.splice(0), [], "nothing on the console");
  });

  before(async () => {
    need(DENO, "deno");
    need(CHROMIUM, "chromium");
    server = await spawnServer("deno (browser)", DENO, demoArgs(), {
      LATENCY_SCALE: String(BROWSER_SCALE),
    });
    const { chromium } = await import("playwright-core");
    profile = await mkdtemp(join(tmpdir(), "sluice-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 960, height: 900 },
      deviceScaleFactor: 1,
    });
    page = context.pages()[0] ?? await context.newPage();
    // What must not happen on the page: console errors, uncaught errors,
    // requests that fail or answer 4xx/5xx (a missing favicon would). The
    // cancel test closes its EventSource on purpose: that request's abort
    // is expected.
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`uncaught: ${error}`));
    page.on("requestfailed", (request) => {
      const failure = request.failure()?.errorText ?? "";
      const sse = /\/api\/(to|hono)-sse\?/.test(request.url());
      if (!(sse && failure === "net::ERR_ABORTED")) {
        problems.push(`failed: ${request.url()} ${failure}`);
      }
    });
    page.on("response", (response) => {
      if (response.status() >= 400) {
        problems.push(`${response.status()}: ${response.url()}`);
      }
    });
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(server.base + "/");
    await page.waitForLoadState("load");
  });

  after(async () => {
    await context?.close();
    await server?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  test("the page loads without an error or a failed request, favicon included", async () => {
    await sleep(300); // a favicon request, if any, comes after "load"
    assert.deepEqual(problems, []);
    assert.match(
      await page.getAttribute('link[rel="icon"]', "href") ?? "",
      /^data:image\/svg\+xml,/,
    );
    assert(
      !requested.some((url) => url.endsWith("/favicon.ico")),
      `requested: ${requested.join(", ")}`,
    );
  });

  async function startRun(n, route, drop = false) {
    await page.fill("#n", String(n));
    await page.selectOption("#route", route);
    await page.setChecked("#drop", drop);
    await page.click("#start");
  }

  /**
   * Samples the number of results shown until the run ends; `midway(count)`
   * runs once, when at least half of `n` results are shown and more are due.
   */
  async function watch(timeoutMs, n = Infinity, midway = async () => {}) {
    const samples = [];
    const t0 = Date.now();
    let calledMidway = false;
    for (;;) {
      const { count, state } = await page.evaluate(() => ({
        count: document.querySelectorAll("li.result").length,
        state: document.body.dataset.state,
      }));
      samples.push({ t: Date.now() - t0, count });
      if (!calledMidway && state === "running" && count >= n / 2 && count < n) {
        calledMidway = true;
        await midway(count);
      }
      if (state !== "running") return { samples, state };
      if (Date.now() - t0 > timeoutMs) return { samples, state: "timeout" };
      await sleep(40);
    }
  }

  const shownIndices = () =>
    page.$$eval(
      "li.result",
      (lis) => lis.map((li) => Number(li.dataset.index)),
    );

  test("results appear progressively, in order, and the bar reaches 100 %", async (t) => {
    const n = 12;
    await startRun(n, "/api/to-sse");
    // The README's screenshot: the page halfway through a run.
    const readme = process.env.SLUICE_SCREENSHOT;
    let legend;
    const { samples, state } = await watch(40_000, n, async () => {
      // The colour legend stays visible while the status line changes.
      legend = {
        visible: await page.isVisible(".legend span.held"),
        text: await page.textContent(".legend"),
        status: await page.textContent("#status"),
      };
      if (readme) {
        await page.locator("body").screenshot({ path: join(ROOT, readme) });
      }
    });
    assert.equal(state, "done");
    assert(legend, "the run was watched midway");
    assert(legend.visible, "the legend is visible while running");
    assert.match(
      legend.text.replace(/\s+/g, " "),
      /delivered.*done, waiting for an earlier one/,
    );
    assert.match(legend.status, /calls? running/, "the status line changed");
    assert(await page.isVisible(".legend span.held"), "and after the run");
    // The moments the list grew.
    const steps = samples.filter((s, i) =>
      i > 0 && s.count > samples[i - 1].count
    );
    t.diagnostic(
      `list grew at ${steps.map((s) => `${s.t}ms→${s.count}`).join(", ")}`,
    );
    assert(steps.length >= 4, `the list grew in ${steps.length} steps`);
    const first = samples.find((s) => s.count > 0);
    const last = samples.at(-1);
    assert(first.count < n / 2, `first step showed ${first.count} results`);
    assert(
      first.t < 0.8 * last.t,
      `first results at ${first.t} ms, end at ${last.t} ms`,
    );
    assert.deepEqual(await shownIndices(), range(0, n));
    assert.equal(await page.textContent("#percent"), `${n} / ${n} · 100 %`);
    assert.equal(await page.getAttribute(".bar", "aria-valuenow"), "100");
    const shot = join(tmp, "demo.png");
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}${readme ? `; halfway: ${readme}` : ""}`);
  });

  for (
    const [route, label] of [
      ["/api/to-sse", "toSSE(flow)"],
      ["/api/hono-sse", "Hono streamSSE"],
    ]
  ) {
    test(`dropped connections resume after Last-Event-ID, in order (${label})`, async () => {
      const n = 12;
      const before = (await serverStats(server)).runs.length;
      await startRun(n, route, true);
      const { state } = await watch(60_000);
      assert.equal(state, "done");
      assert.deepEqual(
        await shownIndices(),
        range(0, n),
        "each result once, in order",
      );
      // Dropped after #4 and #9: two reconnections, three server runs.
      const notes = await page.$$eval(
        "li.note",
        (lis) => lis.map((li) => li.textContent),
      );
      assert.deepEqual(notes, [
        "connection closed after #4: reconnecting with Last-Event-ID: 4",
        "connection closed after #9: reconnecting with Last-Event-ID: 9",
      ]);
      assert.match(
        await page.textContent("#status"),
        /^done: 12 results in order in [\d.]+ s · resumed 2× after dropped connections$/,
      );
      const runs = (await serverStats(server)).runs.slice(before);
      const name = route.slice("/api/".length);
      assert.deepEqual(
        runs.map((r) => [r.route, r.from, r.droppedAfter, r.status]),
        [
          [name, 0, 5, "stopped"],
          [name, 5, 5, "stopped"],
          [name, 10, null, "done"],
        ],
      );
    });
  }

  test("the cancel button stops the server-side flow", async () => {
    await startRun(40, "/api/to-sse");
    await page.waitForFunction(
      () => document.querySelectorAll("li.result").length >= 2,
      null,
      {
        timeout: 30_000,
      },
    );
    await page.click("#cancel");
    await page.waitForSelector("#server[data-status]", { timeout: 10_000 });
    assert.match(
      await page.textContent("#server"),
      /stopped · \d+ calls? in flight saw ctx\.signal\.aborted · 0 still running/,
    );
    assert.match(
      await page.textContent("#status"),
      /^cancelled after \d+ results? \([\d.]+ s\)$/,
    );
    const { run, timers } = await settledRun(server, "to-sse");
    assert.equal(run.status, "stopped");
    assert(run.aborted >= 1);
    assert.equal(run.running, 0);
    assert.equal(run.startedAfterAbort, 0);
    assert(run.delivered < 40);
    assert.deepEqual(timers, []);
  });

  test("counts of one read in the singular", async () => {
    // A run of one, and a run resumed once (dropped after #4 of 6).
    await startRun(1, "/api/to-sse");
    assert.equal((await watch(30_000)).state, "done");
    assert.match(
      await page.textContent("#status"),
      /^done: 1 result in order in [\d.]+ s$/,
    );
    await startRun(6, "/api/hono-sse", true);
    assert.equal((await watch(40_000)).state, "done");
    assert.match(
      await page.textContent("#status"),
      /^done: 6 results in order in [\d.]+ s · resumed once after a dropped connection$/,
    );

    // One result, one call running, one call aborted: a canned stream (a
    // result, then progress) that ends, and a canned /api/stats.
    const full = await readEvents(
      await server.fetch("/api/to-sse?n=1&progress=full"),
      performance.now(),
    );
    const answer = results(full)[0].data;
    const stats = { ...JSON.parse(full.at(-1).data), running: 1, done: false };
    let streams = 0;
    await page.route(/\/api\/to-sse\?/, async (route) => {
      // The EventSource's reconnection waits (retry: 60 s) and is never served.
      if (streams++ > 0) return;
      await route.fulfill({
        status: 200,
        headers: { "content-type": "text/event-stream" },
        body: `retry: 60000\n\nevent: result\nid: 0\ndata: ${answer}\n\n` +
          `event: progress\ndata: ${JSON.stringify(stats)}\n\n`,
      });
    });
    await page.route(/\/api\/stats$/, (route) =>
      route.fulfill({
        json: {
          runs: [{ id: 99, status: "stopped", aborted: 1, running: 0 }],
          timers: null,
        },
      }));
    try {
      await startRun(3, "/api/to-sse");
      await page.waitForSelector("li.note", { timeout: 10_000 });
      assert.match(
        await page.textContent("#status"),
        /^1 call running · 0 done, waiting for an earlier one · [\d.]+ s$/,
      );
      await page.click("#cancel");
      assert.match(
        await page.textContent("#status"),
        /^cancelled after 1 result \([\d.]+ s\)$/,
      );
      await page.waitForFunction(
        () => document.querySelector("#server").textContent.includes("#99"),
        null,
        { timeout: 10_000 },
      );
      assert.equal(
        await page.textContent("#server"),
        "server: run #99 stopped · 1 call in flight saw ctx.signal.aborted · 0 still running",
      );
    } finally {
      await page.unrouteAll({ behavior: "ignoreErrors" });
    }
  });
});
