// ThreadPool on Cloudflare Workers: bundles tests/workerd/threads_worker.ts
// with esbuild (against the built npm package, npm/esm/threads.js) and runs
// it in workerd through Miniflare: `new ThreadPool(...)` throws a TypeError
// saying why and what to use instead.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { bundleWorker, Miniflare } from "./_workerd.mjs";

const script = await bundleWorker("tests/workerd/threads_worker.ts");

test("workerd: Miniflare's module locator refuses the bundle as a `script` (known: the non-literal import() of a Node built-in)", async () => {
  const strict = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-01" });
  try {
    await assert.rejects(strict.ready, { code: "ERR_MODULE_DYNAMIC_SPEC" });
  } finally {
    await strict.dispose().catch(() => {});
  }
});

// The module is given as is: with `script`, Miniflare's module locator
// refuses the bundle (ERR_MODULE_DYNAMIC_SPEC) for _thread.ts's
// `import(specifier)` of a Node built-in, which workerd itself accepts.
const mf = new Miniflare({
  modules: [{ type: "ESModule", path: "threads_worker.mjs", contents: script }],
  compatibilityDate: "2026-04-01",
});
after(() => mf.dispose());

test("workerd: the worker bundle takes ThreadPool from npm/esm/threads.js", () => {
  assert.match(script, /npm\/esm\/threads\.js/);
});

test("workerd: new ThreadPool() throws a TypeError: Workers have no threads, and what to use instead", async () => {
  const res = await mf.dispatchFetch("http://localhost/");
  assert.deepEqual(await res.json(), {
    threw: true,
    isTypeError: true,
    name: "TypeError",
    message:
      "ThreadPool needs threads, and Cloudflare Workers have none (no Worker, no worker_threads): run CPU-heavy stages in another Worker through a service binding or a Queue consumer (sluice/cloudflare), or outside Workers",
  });
});
