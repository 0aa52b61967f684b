// Every options object refuses a name it does not know, at the call site,
// with the closest known name (issue 23): a misspelling is never accepted
// silently.
import assert from "node:assert/strict";
import {
  batch,
  Batcher,
  dashboard,
  filter,
  flatten,
  formatProgress,
  map,
  pipeline,
  Pool,
  toSSE,
} from "../mod.ts";
import { ThreadPool } from "../threads.ts";

/** Asserts `fn` throws (or rejects with) exactly `message` as a TypeError. */
async function refuses(fn: () => unknown, message: string): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof TypeError, `a TypeError for: ${message}`);
  assert.equal((error as TypeError).message, message);
}

const id = (x: number) => x;

Deno.test("a misspelt stage option is a TypeError naming it and the closest known name", async () => {
  await refuses(
    () => map(id, { concurency: 4 } as never),
    "'concurency' is not an option of map(): did you mean 'concurrency'?",
  );
  await refuses(
    () => filter(id, { onerror: "skip" } as never),
    "'onerror' is not an option of filter(): did you mean 'onError'?",
  );
  await refuses(
    () => batch({ maxSize: 2, maxWait: 5 } as never),
    "'maxWait' is not an option of batch(): did you mean 'maxWaitMs'?",
  );
  await refuses(
    () => flatten({ nmae: "x" } as never),
    "'nmae' is not an option of flatten(): did you mean 'name'?",
  );
  await refuses(
    () => map(id, { retry: { attempt: 3 } } as never),
    "'attempt' is not an option of retry: did you mean 'attempts'?",
  );
  await refuses(
    () => map(id, { rateLimit: { limit: 1, interval: 5 } } as never),
    "'interval' is not an option of rateLimit: did you mean 'intervalMs'?",
  );
  await refuses(
    () =>
      map(id, {
        concurrency: { adaptive: { min: 1, max: 8, mni: 2 } },
      } as never),
    "'mni' is not an option of concurrency.adaptive: did you mean 'min'?",
  );
});

Deno.test("an unknown option with no close name lists the known ones", async () => {
  await refuses(
    () => flatten({ depth: 2 } as never),
    "'depth' is not an option of flatten(): its options are 'name'",
  );
});

Deno.test("a misspelt run(), track or items() option is a TypeError", async () => {
  const p = pipeline(map(id));
  await refuses(
    () => p.run([1], { bufferSise: 4 } as never),
    "'bufferSise' is not an option of run(): did you mean 'bufferSize'?",
  );
  await refuses(
    () => p.run([1], { track: { histroy: 4 } } as never),
    "'histroy' is not an option of track: did you mean 'history'?",
  );
  const flow = p.run([1], { track: true });
  await refuses(
    () => flow.items({ state: "done" } as never),
    "'state' is not an option of items(): did you mean 'status'?",
  );
  await flow.collect();
});

Deno.test("a misspelt Pool option is a TypeError, in the constructor and per call", async () => {
  await refuses(
    () => new Pool({ concurency: 2 } as never),
    "'concurency' is not an option of new Pool(): did you mean 'concurrency'?",
  );
  await using pool = new Pool();
  await refuses(
    () => pool.run(() => 1, { priorty: 2 } as never),
    "'priorty' is not an option of pool.run(): did you mean 'priority'?",
  );
  await refuses(
    () => pool.map(id, [1], { bufferSize: 4, oder: "input" } as never),
    "'oder' is not an option of pool.map(): did you mean 'order'?",
  );
  await refuses(
    () => pool.close({ cancel: true } as never),
    "'cancel' is not an option of pool.close(): its options are 'cancelPending'",
  );
});

Deno.test("a misspelt Batcher option is a TypeError, in the constructor, process() and close()", async () => {
  await refuses(
    () =>
      new Batcher((xs: number[]) => xs, { maxSize: 2, maxWait: 1 } as never),
    "'maxWait' is not an option of new Batcher(): did you mean 'maxWaitMs'?",
  );
  const batcher = new Batcher((xs: number[]) => xs, { maxSize: 2 });
  await refuses(
    () => batcher.process(1, { sigal: undefined } as never),
    "'sigal' is not an option of batcher.process(): did you mean 'signal'?",
  );
  await refuses(
    () => batcher.close({ forse: true } as never),
    "'forse' is not an option of batcher.close(): did you mean 'force'?",
  );
  await batcher.close();
});

Deno.test("a misspelt toSSE(), formatProgress(), dashboard() or ThreadPool option is a TypeError", async () => {
  await refuses(
    () => toSSE([1], { heartbeat: 5 } as never),
    "'heartbeat' is not an option of toSSE(): did you mean 'heartbeatMs'?",
  );
  const flow = pipeline(map(id)).run([1]);
  await flow.collect();
  await refuses(
    () => formatProgress(flow.stats(), { totl: 3 } as never),
    "'totl' is not an option of formatProgress(): did you mean 'total'?",
  );
  await refuses(
    () => dashboard(flow, { write() {}, levle: "full" } as never),
    "'levle' is not an option of dashboard(): did you mean 'level'?",
  );
  await refuses(
    () =>
      new ThreadPool(new URL("./threads/tasks.ts", import.meta.url), {
        sise: 2,
      } as never),
    "'sise' is not an option of new ThreadPool(): did you mean 'size'?",
  );
});

Deno.test("inherited keys are not options: an object with a prototype passes", () => {
  const options = Object.create({ unrelated: true }) as { concurrency: number };
  options.concurrency = 2;
  map(id, options);
});

Deno.test("a misspelt remote()/serve() option of sluice/bullmq is a TypeError", async () => {
  const { remote, serve } = await import("../bullmq.ts");
  await refuses(
    () =>
      remote("x", { connection: "redis://127.0.0.1:1", runid: "r" } as never),
    "'runid' is not an option of remote(): did you mean 'runId'?",
  );
  await refuses(
    () =>
      serve("x", () => 1, {
        connection: "redis://127.0.0.1:1",
        concurency: 2,
      } as never),
    "'concurency' is not an option of serve(): did you mean 'concurrency'?",
  );
});
