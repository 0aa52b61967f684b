// ThreadPool in headless Chromium: serves tests/browser/threads.html, the npm
// package's ESM files (npm/esm/threads.js, npm/esm/mod.js) and the task
// module (tests/threads/tasks.mjs) from a 127.0.0.1 server started and
// stopped here; the page's pool runs module Web Workers from a blob: URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import helpers from "./_cases.cjs";
import { openPage } from "./_chromium.mjs";
import { hash } from "../threads/tasks.mjs";

helpers.requireBuiltPackage();

const read = (path) => readFileSync(join(helpers.root, path));
const files = {
  "/": ["text/html", read("tests/browser/threads.html")],
  "/threads.js": ["text/javascript", read("npm/esm/threads.js")],
  "/sluice.js": ["text/javascript", read("npm/esm/mod.js")],
  "/tasks.mjs": ["text/javascript", read("tests/threads/tasks.mjs")],
};
const { page, pageErrors } = await openPage(files, {
  name: "chromium-threads",
});

/** Runs `threadTests[name]()` in the page, for 5 s at most. */
function inPage(name) {
  return Promise.race([
    page.evaluate((name) => globalThis.threadTests[name](), name),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${name} timed out`)), 5_000).unref()),
  ]);
}

test("chromium: ThreadPool (npm/esm/threads.js) runs a task on a module Web Worker", async () => {
  assert.equal(await inPage("run"), hash({ text: "abc" }));
});

test("chromium: ThreadPool.task() as a map stage (concurrency 2) keeps input order; a slow first item finishes last", async () => {
  const { out, finished } = await inPage("order");
  assert.deepEqual(out, [0, 1, 2, 3, 4].map((i) => hash({ text: `item-${i}`, rounds: i === 0 ? 3_000_000 : 1_000 })));
  assert.notEqual(finished[0], 0, `finished in order ${finished}`);
});

test("chromium: ThreadPool.run() aborted while a busy loop runs: the thread is terminated, the call rejects with the reason, the pool goes on", async () => {
  assert.deepEqual(await inPage("abort"), { busy: 1, aborted: "stop", after: "after", restarts: 1 });
});

test("chromium: a task's error keeps name, message and code; a thread that closes itself gives a ThreadError", async () => {
  const { failed, quit, after } = await inPage("errors");
  assert.deepEqual(failed, ["QuotaError", "over quota", "E_QUOTA"]);
  assert.equal(quit[0], true);
  assert.match(quit[1], /^Task "quit": .*self\.close\(\)/);
  assert.equal(after, 1);
});

test("chromium: no page error during the run", () => {
  assert.deepEqual(pageErrors, []);
});
