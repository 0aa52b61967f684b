// A Batcher whose batch function runs on threads: `ThreadPool.task()` gives
// async-batcher's synchronous batch function an executor. The task module is
// tests/threads/batch_tasks.mjs (plain JavaScript). No task here spins: on
// Deno 2.9, `terminate()` does not stop a busy loop.
import assert from "node:assert/strict";
import { Batcher } from "../mod.ts";
import { ThreadPool } from "../threads.ts";
import { vector } from "./threads/batch_tasks.mjs";

type Tasks = typeof import("./threads/batch_tasks.mjs");
const TASKS = new URL("./threads/batch_tasks.mjs", import.meta.url);

Deno.test("ThreadPool.task() as a Batcher's batch function: each caller gets its own result, in order", async () => {
  await using threads = new ThreadPool<Tasks>(TASKS, { size: 2 });
  await using embed = new Batcher(threads.task("embedBatch"), {
    maxSize: 16,
    maxWaitMs: 5,
  });
  const texts = Array.from({ length: 40 }, (_, i) => `text ${i}`);
  const vectors = await Promise.all(texts.map((t) => embed.process(t)));
  assert.deepEqual(vectors, texts.map(vector));
  const stats = embed.stats();
  assert.equal(stats.batchesSent, 3); // 16 + 16 + 8, one thread call each
  assert.equal(stats.succeeded, 40);
  assert.equal(threads.stats().completed, 3);
});

Deno.test("ThreadPool.task() in a Batcher: a thrown error rejects every caller of its batch, and only those", async () => {
  await using threads = new ThreadPool<Tasks>(TASKS, { size: 2 });
  await using embed = new Batcher(threads.task("embedBatch"), {
    maxSize: 16,
    maxWaitMs: 5,
  });
  // One synchronous loop: one batch, which holds "boom".
  const failing = ["a", "boom", "c"].map((t) => embed.process(t));
  const results = await Promise.allSettled(failing);
  for (const r of results) {
    assert.equal(r.status, "rejected");
    const error = r.reason as Error;
    assert.equal(error.name, "EmbedError"); // same name, message and stack
    assert.equal(error.message, 'cannot embed a batch of 3 with "boom"');
    assert.match(error.stack ?? "", /batch_tasks\.mjs/);
  }
  // The next batch, on the same thread, is not affected.
  assert.deepEqual(
    await Promise.all(["d", "e"].map((t) => embed.process(t))),
    [vector("d"), vector("e")],
  );
  const { batchesSent, failed, succeeded } = embed.stats();
  assert.deepEqual({ batchesSent, failed, succeeded }, {
    batchesSent: 2,
    failed: 3,
    succeeded: 2,
  });
  const { failed: callsFailed, restarts } = threads.stats();
  assert.deepEqual({ callsFailed, restarts }, { callsFailed: 1, restarts: 0 });
});

Deno.test("ThreadPool.task() in a Batcher: an Error in the results rejects its caller alone", async () => {
  await using threads = new ThreadPool<Tasks>(TASKS, { size: 1 });
  await using embed = new Batcher(threads.task("embedBatch"), {
    maxSize: 16,
  });
  const [a, empty, c] = await Promise.allSettled(
    ["a", "", "c"].map((t) => embed.process(t)),
  );
  assert.deepEqual(a, { status: "fulfilled", value: vector("a") });
  assert.deepEqual(c, { status: "fulfilled", value: vector("c") });
  assert.equal(empty.status, "rejected");
  assert(empty.reason instanceof Error);
  assert.equal(empty.reason.message, "cannot embed an empty text");
  assert.equal(embed.stats().batchesSent, 1);
});

Deno.test("ThreadPool.task() in a Batcher: a result of the wrong length rejects the whole batch", async () => {
  await using threads = new ThreadPool<Tasks>(TASKS, { size: 1 });
  await using embed = new Batcher(threads.task("embedShort"), {
    maxSize: 16,
  });
  const results = await Promise.allSettled(
    ["a", "b", "c"].map((t) => embed.process(t)),
  );
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert(r.reason instanceof RangeError);
    assert.match(r.reason.message, /2 results for a batch of 3 items/);
  }
});

Deno.test("ThreadPool.task() in a Batcher: closing the batcher, then the pool, settles everything", async () => {
  const threads = new ThreadPool<Tasks>(TASKS, { size: 2 });
  const embed = new Batcher(threads.task("embedBatch"), {
    maxSize: 4,
    maxWaitMs: 1_000, // close() sends the partial batch at once
    concurrency: 2,
  });
  const pending = Array.from({ length: 10 }, (_, i) => embed.process(`t${i}`));
  await embed.close();
  assert.deepEqual(
    await Promise.all(pending),
    Array.from({ length: 10 }, (_, i) => vector(`t${i}`)),
  );
  await threads.close();
  assert.deepEqual(threads.stats().busy, 0);
  await assert.rejects(threads.run("embedBatch", ["late"]), TypeError);
  await assert.rejects(embed.process("late"), TypeError);
});
