// Remote stages (sluice/bullmq) against a real Redis (tests/node/_redis.mjs:
// Debian's redis-server on a free 127.0.0.1 port) and worker processes
// (tests/node/bullmq_worker.mjs) on Node, Bun and Deno, with the pipeline in
// this Node process, all through the built npm package.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import helpers from "./_cases.cjs";
import { startRedis } from "./_redis.mjs";

helpers.requireBuiltPackage();
const { map, pipeline } = await import("sluice");
const { remote, serve, JobLostError, RemoteError } = await import("sluice/bullmq");

let redis;
const children = new Set();
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const child of children) child.kill("SIGKILL");
  await redis?.close();
});

const RUNTIMES = {
  node: [process.execPath],
  bun: [join(helpers.root, "node_modules/.bin/bun")],
  deno: [join(helpers.root, "node_modules/.bin/deno"), "run", "-A"],
};

/** Starts a worker process; resolves once it reports ready. */
async function startWorker(runtime, queue, concurrency) {
  const [command, ...args] = RUNTIMES[runtime];
  const child = spawn(command, [...args, "tests/node/bullmq_worker.mjs", redis.url, queue, String(concurrency)], {
    cwd: helpers.root,
    env: { ...process.env, RUST_BACKTRACE: "0", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const events = [];
  const waiters = new Set();
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let buffer = "";
  child.stdout.on("data", (d) => {
    buffer += d;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith("{")) continue;
      events.push(JSON.parse(line));
      for (const w of waiters) w();
    }
  });
  const worker = {
    child,
    runtime,
    events,
    starts: () => events.filter((e) => e.event === "start"),
    /** Resolves when `predicate(events)` holds (within `ms`). */
    waitFor(predicate, ms = 15_000, what = "an event") {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(events)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${runtime} worker: no ${what} within ${ms} ms\n${stderr}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    exited: new Promise((resolve) => child.once("exit", resolve)),
  };
  await worker.waitFor((e) => e.some((x) => x.event === "ready"), 20_000, "ready");
  return worker;
}

let queues = 0;
const queueName = (what) => `${what}-${process.pid}-${++queues}`;
const items = (n, extra = {}) => Array.from({ length: n }, (_, i) => ({ n: i, ...extra }));
/** A BullMQ Queue to look into Redis, with its client as `.redis`. */
function inspect(name) {
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on("error", () => {});
  return Object.assign(new Queue(name, { connection: client }), { redis: client });
}
async function closeInspector(queue) {
  await queue.close();
  queue.redis.disconnect();
}
const countBy = (list, key) => {
  const counts = new Map();
  for (const x of list) counts.set(x[key], (counts.get(x[key]) ?? 0) + 1);
  return counts;
};

test("remote() 400 items over a Node and a Bun worker, the Node one killed with kill -9 mid-run: every result once, in input order", async () => {
  const name = queueName("kill");
  const [nodeWorker, bunWorker] = await Promise.all([
    startWorker("node", name, 8),
    startWorker("bun", name, 8),
  ]);
  const stage = remote(name, { connection: redis.url, runId: `kill-${Date.now()}` });
  const flow = pipeline(map(stage, { concurrency: 32 })).run(items(400, { ms: 40 }));
  const results = [];
  let killed = false;
  for await (const r of flow) {
    results.push(r);
    if (!killed && results.length === 100) {
      killed = true;
      nodeWorker.child.kill("SIGKILL");
    }
  }
  await nodeWorker.exited;
  assert.deepEqual(results.map((r) => r.n), items(400).map((i) => i.n * 2));
  const starts = [...nodeWorker.starts(), ...bunWorker.starts()];
  const counts = countBy(starts, "itemId");
  assert.equal(counts.size, 400, "every item reached a worker");
  const again = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
  assert.ok(again.length > 0, "the killed worker's jobs were delivered again");
  for (const id of again) {
    assert.ok(bunWorker.starts().some((s) => s.itemId === id && s.delivery === 2), `item ${id} redelivered to Bun`);
  }
  assert.ok(results.some((r) => r.pid === bunWorker.child.pid));
  assert.ok(results.some((r) => r.pid === nodeWorker.child.pid));
  bunWorker.child.kill("SIGTERM");
  await bunWorker.exited;
  assert.equal(stage.outstanding, 0);
});

test("remote() a remote error goes through the stage's retry, then onError: 'skip' (flow.failures has its name and message)", async () => {
  const name = queueName("error");
  const worker = await startWorker("node", name, 2);
  const stage = remote(name, { connection: redis.url });
  const flow = pipeline(map(stage, { retry: { attempts: 3, delayMs: 10 }, onError: "skip" }))
    .run([{ n: 1 }, { n: 2, fail: "RangeError" }, { n: 3 }]);
  assert.deepEqual((await flow.collect()).map((r) => r.n), [2, 6]);
  assert.equal(flow.failures.length, 1);
  const { error, itemId } = flow.failures[0];
  assert.equal(itemId, 1);
  assert.ok(error instanceof RemoteError);
  assert.equal(error.name, "RangeError");
  assert.equal(error.message, "item 2 is bad");
  assert.match(error.remoteStack, /RangeError: item 2 is bad/);
  assert.equal(worker.starts().filter((s) => s.itemId === "1").length, 3, "three attempts reached the worker");
  worker.child.kill("SIGTERM");
  await worker.exited;
});

test("remote() abort removes the waiting jobs and aborts ctx.signal of the active ones; nothing of the run stays in Redis", async () => {
  const name = queueName("abort");
  const worker = await startWorker("deno", name, 2);
  const stage = remote(name, { connection: redis.url, runId: "abort-run" });
  const controller = new AbortController();
  const flow = pipeline(map(stage, { concurrency: 10 })).run(items(10, { ms: 20_000 }), { signal: controller.signal });
  const done = flow.collect().catch((e) => e);
  await worker.waitFor((e) => e.filter((x) => x.event === "start").length === 2, 15_000, "2 starts");
  const queue = inspect(name);
  try {
    assert.equal(await queue.getWaitingCount(), 8);
    controller.abort(new Error("stop"));
    assert.equal((await done).message, "stop");
    await worker.waitFor((e) => e.filter((x) => x.event === "aborted").length === 2, 5000, "2 aborts");
    assert.equal(await queue.getWaitingCount(), 0);
    // The aborted active jobs fail on the worker, which removes them.
    const deadline = Date.now() + 5000;
    let counts;
    do {
      await new Promise((r) => setTimeout(r, 50));
      counts = await queue.getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
    } while (Object.values(counts).some((c) => c > 0) && Date.now() < deadline);
    assert.deepEqual(counts, { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, prioritized: 0 });
    assert.deepEqual(await queue.redis.keys(`bull:${name}:abort-run*`), []);
  } finally {
    await closeInspector(queue);
    worker.child.kill("SIGTERM");
    await worker.exited;
  }
});

test("remote() a run started again with the same runId takes the results already done and runs only the rest", async () => {
  const name = queueName("restart");
  const worker = await startWorker("node", name, 4);
  const runId = `restart-${Date.now()}`;
  const input = items(20, { ms: 30 });
  // The first process: stops after 8 results (its other calls are aborted).
  const first = remote(name, { connection: redis.url, runId });
  const seen = [];
  for await (const r of pipeline(map(first, { concurrency: 4 })).run(input)) {
    seen.push(r.n / 2);
    if (seen.length === 8) break;
  }
  await first.close();
  const startsBefore = countBy(worker.starts(), "itemId");
  // The second process: the same run id, the whole input.
  const second = remote(name, { connection: redis.url, runId });
  const results = await pipeline(map(second, { concurrency: 4 })).run(input).collect();
  assert.deepEqual(results.map((r) => r.n), input.map((i) => i.n * 2));
  const startsAfter = countBy(worker.starts(), "itemId");
  for (const n of seen) {
    assert.equal(startsAfter.get(String(n)), 1, `item ${n}, done by the first run, ran once`);
  }
  assert.ok(startsBefore.size < 20);
  assert.equal(startsAfter.size, 20);
  worker.child.kill("SIGTERM");
  await worker.exited;
});

test("remote() payloads that cannot be encoded fail their item at the call with a TypeError naming the path", async () => {
  const stage = remote(queueName("payload"), { connection: redis.url });
  const cycle = { a: {} };
  cycle.a.back = cycle;
  const input = [
    { user: { callback: () => {} } },
    cycle,
    { big: 10n },
    { list: [1, Symbol("s")] },
    { tags: new Set(["x"]) },
  ];
  const flow = pipeline(map(stage, { onError: "skip" })).run(input);
  assert.deepEqual(await flow.collect(), []);
  const messages = flow.failures.map((f) => `${f.error.name}: ${f.error.message}`);
  assert.deepEqual(messages, [
    "TypeError: item 0 cannot be sent: item.user.callback is a function",
    "TypeError: item 1 cannot be sent: item.a.back is a cycle (it contains itself)",
    "TypeError: item 2 cannot be sent: item.big is a BigInt (JSON has none: convert it to a string or a number, or pass a codec)",
    "TypeError: item 3 cannot be sent: item.list[1] is a symbol",
    "TypeError: item 4 cannot be sent: item.tags is a Set (JSON would send it as {}: convert it, or pass a codec)",
  ]);
  assert.equal(stage.outstanding, 0);
});

test("remote() and serve() across a Redis restart: waiting calls fail with JobLostError at once, retried they succeed once Redis is back, the worker serves again", async () => {
  const name = queueName("restart-redis");
  const worker = await startWorker("bun", name, 4);
  const stage = remote(name, { connection: redis.url, runId: `rr-${Date.now()}`, connectTimeoutMs: 2000 });
  const lost = [];
  const flow = pipeline(map(stage, {
    concurrency: 8,
    retry: { attempts: 60, delayMs: 250, factor: 1, jitter: false, retryIf: (e) => (e instanceof JobLostError ? (lost.push(e), true) : false) },
  })).run(items(100, { ms: 40 }));
  const results = [];
  let restarted;
  for await (const r of flow) {
    results.push(r);
    if (results.length === 20) {
      restarted = (async () => {
        await redis.stop();
        // A call made while Redis is down fails within connectTimeoutMs.
        const probe = remote(name, { connection: redis.url });
        const t0 = Date.now();
        const error = await probe({ n: 0 }, { signal: new AbortController().signal, itemId: 0, attempt: 1, stage: "probe" }).catch((e) => e);
        const ms = Date.now() - t0;
        await probe.close();
        await new Promise((r) => setTimeout(r, 500));
        await redis.start();
        return { error, ms };
      })();
    }
  }
  const { error, ms } = await restarted;
  assert.ok(error instanceof JobLostError, String(error));
  assert.match(error.message, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
  assert.ok(ms < 4000, `the probe failed after ${ms} ms`);
  assert.deepEqual(results.map((r) => r.n), items(100).map((i) => i.n * 2));
  assert.ok(lost.length > 0, "calls waiting when Redis went away failed with JobLostError");
  assert.match(lost[0].message, /lost the connection to Redis|unreachable|cannot reach/);
  // The worker reconnected and served after the restart.
  const startsAfter = worker.starts().length;
  assert.ok(startsAfter > 100 - 20);
  worker.child.kill("SIGTERM");
  await worker.exited;
});

test("serve() close() lets a running job finish and deliver; close({ handBack: true }) aborts it and hands it to another worker at once", async () => {
  const name = queueName("close");
  const log = [];
  const make = (label) =>
    serve(name, async (item, ctx) => {
      log.push(`${label} start ${item.n} #${ctx.delivery}`);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, item.ms);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          log.push(`${label} aborted ${item.n}`);
          reject(ctx.signal.reason);
        }, { once: true });
      });
      return `${label}:${item.n}`;
    }, { connection: redis.url });
  const stage = remote(name, { connection: redis.url });
  const ctx = (n) => ({ signal: new AbortController().signal, itemId: n, attempt: 1, stage: "close" });

  // close(): the running job finishes, its result arrives.
  const a = make("a");
  await a.ready();
  const first = stage({ n: 1, ms: 500 }, ctx(1));
  while (a.running === 0) await new Promise((r) => setTimeout(r, 10));
  await a.close();
  assert.equal(await first, "a:1");

  // close({ handBack: true }): aborted at once, run again by worker c.
  const b = make("b");
  await b.ready();
  const second = stage({ n: 2, ms: 2000 }, ctx(2));
  while (b.running === 0) await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  await b.close({ handBack: true });
  assert.ok(Date.now() - t0 < 1000, "handing back does not wait for the job");
  const c = make("c");
  assert.equal(await second, "c:2");
  await c.close();
  await stage.close();
  assert.deepEqual(log, ["a start 1 #1", "b start 2 #1", "b aborted 2", "c start 2 #2"]);
});
