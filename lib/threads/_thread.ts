/**
 * One thread of a `ThreadPool`: a module Web Worker (Deno, Bun, browsers) or
 * a `node:worker_threads` Worker (Node), behind one small interface; or, with
 * `isolation: "process"`, a child process (`_process.ts`).
 *
 * @module
 */

import { nodeWorkerSource, webWorkerSource } from "./_bootstrap.ts";
import { processSpawnerFor } from "./_process.ts";
import {
  importBuiltin,
  type Spawner,
  type Thread,
  type ThreadEvents,
} from "./_spawner.ts";

/** Where a pool's calls run: threads, or child processes that can be killed. */
export type Isolation = "thread" | "process";

interface NodeWorker {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  terminate(): Promise<number>;
  on(event: string, listener: (arg: unknown) => void): void;
  ref(): void;
  unref(): void;
}

interface NodeWorkerThreads {
  Worker: new (
    code: string,
    options: { eval: true },
  ) => NodeWorker;
}

/** Module Web Workers, started from a `blob:` URL of the bootstrap. */
class WebSpawner implements Spawner {
  readonly #url: string;

  constructor(moduleURL: string) {
    const blob = new Blob([webWorkerSource(moduleURL)], {
      type: "text/javascript",
    });
    this.#url = URL.createObjectURL(blob);
  }

  spawn(events: ThreadEvents): Thread {
    const worker = new Worker(this.#url, { type: "module" });
    let ended = false;
    const thread: Thread = {
      post: (message, transfer) => worker.postMessage(message, transfer),
      terminate: () => {
        ended = true;
        worker.terminate();
      },
      ref: () => {},
    };
    worker.onmessage = (event) => events.message(thread, event.data);
    worker.onerror = (event) => {
      // Handled here: unhandled, an error in a worker ends the process.
      event.preventDefault();
      if (ended) return;
      ended = true;
      worker.terminate();
      // The error's own message: Bun's event message is a code frame.
      const message = (event.error as Error | undefined)?.message ??
        event.message ?? "an uncaught error";
      events.died(thread, `the thread failed: ${message}`, event.error);
    };
    // Bun: process.exit() in a worker ends it with only a "close" event.
    worker.addEventListener("close", (event) => {
      if (ended) return;
      ended = true;
      const code = (event as Event & { code?: number }).code;
      events.died(thread, `the thread exited with code ${code ?? "unknown"}`);
    });
    worker.onmessageerror = () => {
      if (ended) return;
      ended = true;
      worker.terminate();
      events.died(thread, "a message from the thread could not be read");
    };
    return thread;
  }

  /** The blob URL is released with the pool. */
  close(): void {
    URL.revokeObjectURL(this.#url);
  }
}

/** `node:worker_threads` Workers, started with the bootstrap as `eval` code. */
class NodeSpawner implements Spawner {
  readonly #threads: NodeWorkerThreads;
  readonly #code: string;

  constructor(threads: NodeWorkerThreads, moduleURL: string) {
    this.#threads = threads;
    this.#code = nodeWorkerSource(moduleURL);
  }

  spawn(events: ThreadEvents): Thread {
    const worker = new this.#threads.Worker(this.#code, { eval: true });
    let ended = false;
    const thread: Thread = {
      post: (message, transfer) => worker.postMessage(message, transfer),
      terminate: () => {
        ended = true;
        worker.terminate().catch(() => {});
      },
      ref: (on) => on ? worker.ref() : worker.unref(),
    };
    worker.on("message", (data) => events.message(thread, data));
    worker.on("error", (error) => {
      if (ended) return;
      ended = true;
      worker.terminate().catch(() => {});
      events.died(
        thread,
        `the thread failed: ${(error as Error)?.message ?? String(error)}`,
        error,
      );
    });
    worker.on("exit", (code) => {
      if (ended) return;
      ended = true;
      events.died(thread, `the thread exited with code ${code}`);
    });
    return thread;
  }

  close(): void {}
}

/** Whether this is Node (not Deno or Bun, which have Web Workers). */
function isNode(): boolean {
  const g = globalThis as unknown as {
    process?: { versions?: { node?: string; bun?: string } };
    Deno?: unknown;
  };
  return g.process?.versions?.node !== undefined &&
    g.process.versions.bun === undefined && g.Deno === undefined;
}

/** Throws the reason when this runtime has no threads. */
export function assertThreads(): void {
  if (!isNode() && typeof globalThis.Worker !== "function") {
    throw new TypeError(noThreads());
  }
}

/**
 * The spawner of the runtime for `isolation`, or an error saying why it has
 * no threads (or processes).
 */
export async function spawnerFor(
  moduleURL: string,
  isolation: Isolation = "thread",
): Promise<Spawner> {
  if (isolation === "process") return await processSpawnerFor(moduleURL);
  const node = isNode();
  if (!node && typeof globalThis.Worker === "function") {
    return new WebSpawner(moduleURL);
  }
  if (node) {
    const threads = await importBuiltin("worker_threads") as NodeWorkerThreads;
    return new NodeSpawner(threads, moduleURL);
  }
  throw new TypeError(noThreads());
}

/** Why this runtime has no threads, and what to use instead. */
export function noThreads(): string {
  const workerd = (globalThis as { navigator?: { userAgent?: string } })
    .navigator?.userAgent === "Cloudflare-Workers";
  return workerd
    ? "ThreadPool needs threads, and Cloudflare Workers have none (no Worker, no worker_threads): run CPU-heavy stages in another Worker through a service binding or a Queue consumer (sluice/cloudflare), or outside Workers"
    : "ThreadPool needs module Web Workers or node:worker_threads, and this runtime has neither";
}

/** The number of logical cores, where the runtime says. */
export async function logicalCores(): Promise<number> {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } })
    .navigator?.hardwareConcurrency;
  if (typeof n === "number" && n > 0) return n;
  try {
    const os = await importBuiltin("os") as {
      availableParallelism?: () => number;
      cpus(): unknown[];
    };
    return os.availableParallelism?.() ?? Math.max(os.cpus().length, 1);
  } catch {
    return 1;
  }
}
