// ThreadPool on Node (ES modules): the shared cases (tests/threads/cases.mjs)
// against the built npm package, loaded as `import "sluice/threads"`
// (tests/node_modules/sluice → npm/, the "import" condition), with threads
// from node:worker_threads; then the process-level checks: a Node process
// whose thread ran an aborted busy loop exits on its own, and an app bundled
// by esbuild for browsers runs its tasks here.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const threadsLib = await import("sluice/threads");
const lib = { ...threadsLib, ...(await import("sluice")) };
const { cases } = await import("../threads/cases.mjs");
const tasks = new URL("../threads/node_tasks.mjs", import.meta.url);

test("node esm: import 'sluice/threads' resolves to npm/esm/threads.js", () => {
  assert.ok(import.meta.resolve("sluice/threads").endsWith("/npm/esm/threads.js"));
  for (const name of ["ThreadPool", "ThreadError", "transfer"]) {
    assert.equal(typeof threadsLib[name], "function", name);
  }
});

for (const c of cases) {
  test(`node esm: ${c.name}`, () => c.run(lib, tasks));
}

/** Runs `code` as an ES module in a new Node process; its result. */
function runNode(code, dir, flags = []) {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  return spawnSync(process.execPath, [...flags, file], {
    cwd: helpers.root,
    encoding: "utf8",
    timeout: 20_000,
  });
}

const dir = mkdtempSync(join(helpers.root, "tests/threads/.tmp-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("node esm: a process whose pool aborted a busy loop and timed one out exits on its own, without close()", () => {
  const r = runNode(
    `import { ThreadPool } from "sluice/threads";
import { map, pipeline } from "sluice";
const threads = new ThreadPool(${JSON.stringify(tasks.href)}, { size: 2 });
const controller = new AbortController();
const call = threads.run("spin", null, { signal: controller.signal }).catch((e) => e.message);
setTimeout(() => controller.abort(new Error("stop")), 50);
const timedOut = await pipeline(map(threads.task("spin"), {
  timeoutMs: 50,
  onError: (e) => ({ value: e.name }),
})).run([null]).collect();
console.log(JSON.stringify({ aborted: await call, timedOut, after: await threads.run("echo", { value: 1 }) }));
`,
    dir,
  );
  assert.equal(r.error, undefined, `the process did not exit: ${r.error}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    aborted: "stop",
    timedOut: ["TimeoutError"],
    after: 1,
  });
});

test("node esm: a thread that runs out of memory is replaced: its call rejects with a ThreadError (ERR_WORKER_OUT_OF_MEMORY), the pool goes on", () => {
  // A small heap (threads get the process's limit), so the task hits it fast.
  const r = runNode(
    `import { ThreadError, ThreadPool } from "sluice/threads";
const threads = new ThreadPool(${JSON.stringify(tasks.href)}, { size: 1 });
const error = await threads.run("hog", null).catch((e) => e);
console.log(JSON.stringify({
  threadError: error instanceof ThreadError,
  code: error.cause?.code,
  after: await threads.run("echo", { value: 1 }),
  restarts: threads.stats().restarts,
}));
await threads.close();
`,
    dir,
    ["--max-old-space-size=96"],
  );
  assert.equal(r.error, undefined, `the process did not exit: ${r.error}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    threadError: true,
    code: "ERR_WORKER_OUT_OF_MEMORY",
    after: 1,
    restarts: 1,
  });
});

test("node esm: esbuild bundles an app importing 'sluice/threads' for the browser (platform browser and neutral), and the bundle runs a task", async (t) => {
  const app = join(dir, "app.mjs");
  writeFileSync(
    app,
    `import { ThreadPool } from "sluice/threads";
import { map, pipeline } from "sluice";
export async function main(tasks) {
  const threads = new ThreadPool(tasks, { size: 2 });
  try {
    const out = await pipeline(map(threads.task("hash"), { concurrency: 2 }))
      .run([{ text: "a" }, { text: "b" }]).collect();
    return { out, echo: await threads.run("echo", { value: "bundled" }) };
  } finally {
    await threads.close();
  }
}
`,
  );
  const { hash } = await import("../threads/tasks.mjs");
  for (const platform of ["browser", "neutral"]) {
    await t.test(platform, async () => {
      const outfile = join(dir, `bundle-${platform}.mjs`);
      const result = buildSync({
        absWorkingDir: join(helpers.root, "tests"),
        entryPoints: [app],
        outfile,
        bundle: true,
        format: "esm",
        platform,
        target: "es2022",
        logLevel: "silent",
        nodePaths: [join(helpers.root, "tests/node_modules")],
      });
      assert.deepEqual(result.errors, []);
      const code = (await import("node:fs")).readFileSync(outfile, "utf8");
      assert.match(code, /ThreadPool/);
      assert.doesNotMatch(code, /^import [^\n]*["']node:/m, "no static import of a Node built-in");
      const { main } = await import(pathToFileURL(outfile).href);
      assert.deepEqual(await main(tasks.href), {
        out: [hash({ text: "a" }), hash({ text: "b" })],
        echo: "bundled",
      });
    });
  }
});
