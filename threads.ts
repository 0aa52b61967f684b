/**
 * CPU work on every core: the exported functions of a module, run on threads
 * (module Web Workers in Deno, Bun and browsers; `node:worker_threads` in
 * Node), as stage functions for `map`, `filter`, `Pool` and `Batcher`.
 * Aborting a call terminates its thread, so CPU-bound code stops for real.
 *
 * @example
 * ```ts ignore
 * import { map, pipeline } from "sluice";
 * import { ThreadPool } from "sluice/threads";
 *
 * await using threads = new ThreadPool(new URL("./tasks.ts", import.meta.url));
 * const p = pipeline(map(threads.task("hash"), { concurrency: 2 }));
 * ```
 *
 * @module
 */

export {
  type AnyTask,
  type TaskArg,
  type TaskName,
  type TaskResult,
  type ThreadCloseOptions,
  ThreadPool,
  type ThreadPoolOptions,
  type ThreadPoolStats,
  type ThreadRunOptions,
  transfer,
} from "./lib/threads/thread_pool.ts";
export { ThreadError } from "./lib/threads/thread_error.ts";
