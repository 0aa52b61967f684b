// A Cloudflare Worker that tries to make a ThreadPool: bundled with esbuild
// against the built npm package by tests/node/threads_workerd.test.mjs and
// run in workerd through Miniflare. Workers have no threads, so the
// constructor throws; the worker answers with that error.
import { ThreadPool } from "sluice/threads";

export default {
  fetch(): Response {
    try {
      new ThreadPool("https://example.com/tasks.js", { size: 1 });
      return Response.json({ threw: false });
    } catch (error) {
      const e = error as Error;
      return Response.json({
        threw: true,
        isTypeError: e instanceof TypeError,
        name: e.name,
        message: e.message,
      });
    }
  },
};
