// CPU work on threads: `deno run -A examples/threads.ts`
//
// A pipeline fetches documents (I/O), scores each one (CPU: about 40 ms of
// hashing), then enriches it (I/O). It runs twice over the same 12 documents:
// once with the scoring inline, on the event loop, and once on a ThreadPool of
// 2 threads (`map(threads.task("score"), { concurrency: 2 })`). A 10 ms
// interval timer runs during each run: inline, it hardly ever gets a turn
// (every score blocks the event loop for ~40 ms); threaded, it keeps ticking,
// since the event loop only waits for messages. The "I/O" is simulated with
// timers, so the example needs no network.
import { map, pipeline, type TaskContext } from "../mod.ts";
import { ThreadPool } from "../threads.ts";
import { type Doc, score, type Scored } from "./threads_tasks.ts";

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** Simulated I/O: a document arrives after 5 to 15 ms. */
async function fetchDoc(id: number, ctx: TaskContext): Promise<Doc> {
  await sleep(5 + (id * 7) % 11, ctx.signal);
  return { id, text: `document ${id}: ${"lorem ipsum ".repeat(id % 4 + 1)}` };
}

/** Simulated I/O: a lookup of 5 ms per scored document. */
async function enrich(doc: Scored, ctx: TaskContext): Promise<string> {
  await sleep(5, ctx.signal);
  return `#${doc.id}=${doc.score}`;
}

/** What one run did. */
export interface RunReport {
  /** Wall-clock time of the run. */
  ms: number;
  /** How many times the 10 ms interval fired during the run. */
  ticks: number;
  /** The longest the event loop went without firing it. */
  longestWaitMs: number;
  /** The enriched documents, in input order. */
  results: string[];
}

/** Runs `run` with a 10 ms interval timer beside it, counting its ticks. */
async function timed(run: () => Promise<string[]>): Promise<RunReport> {
  const start = performance.now();
  let last = start;
  let ticks = 0;
  let longestWaitMs = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    longestWaitMs = Math.max(longestWaitMs, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    const results = await run();
    const end = performance.now();
    longestWaitMs = Math.max(longestWaitMs, end - last);
    return { ms: end - start, ticks, longestWaitMs, results };
  } finally {
    clearInterval(interval);
  }
}

export async function main(log: (line: string) => void = () => {}): Promise<{
  inline: RunReport;
  threaded: RunReport;
  completed: number;
}> {
  const ids = Array.from({ length: 12 }, (_, i) => i + 1);
  log(
    `${ids.length} documents: fetch (I/O, 4 at a time) → score (CPU, ~40 ms each, 2 at a time) → enrich (I/O, 4 at a time)`,
  );

  // The CPU stage is the only difference between the two pipelines.
  const inline = await timed(() =>
    pipeline(
      map(fetchDoc, { concurrency: 4 }),
      map((doc: Doc) => score(doc), { concurrency: 2 }),
      map(enrich, { concurrency: 4 }),
    ).run(ids).collect()
  );
  log(line("inline", inline));

  // `await using`: the pool closes (its threads end) at the end of the scope.
  await using threads = new ThreadPool<typeof import("./threads_tasks.ts")>(
    new URL("./threads_tasks.ts", import.meta.url),
    { size: 2 },
  );
  // Threads start lazily: two calls at once start both before the clock runs.
  const warm = { id: 0, text: "warm-up" };
  await Promise.all([threads.run("score", warm), threads.run("score", warm)]);

  const threaded = await timed(() =>
    pipeline(
      map(fetchDoc, { concurrency: 4 }),
      map(threads.task("score"), { concurrency: 2, timeoutMs: 5_000 }),
      map(enrich, { concurrency: 4 }),
    ).run(ids).collect()
  );
  log(line("threads", threaded));

  const same = inline.results.join() === threaded.results.join();
  log(
    `same ${threaded.results.length} results in the same order: ${
      same ? "yes" : "no"
    } (${threaded.results.slice(0, 3).join(", ")}, …)`,
  );
  const { completed, failed, restarts } = threads.stats();
  log(
    `thread pool: ${completed} calls completed, ${failed} failed, ${restarts} restarts`,
  );
  return { inline, threaded, completed };
}

function line(label: string, r: RunReport): string {
  return `${label.padEnd(8)} ${r.ms.toFixed(0).padStart(5)} ms · ` +
    `10 ms timer ticked ${String(r.ticks).padStart(3)} times · ` +
    `event loop blocked up to ${r.longestWaitMs.toFixed(0).padStart(3)} ms`;
}

if (import.meta.main) await main(console.log);
