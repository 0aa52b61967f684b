import { type Job, WaitingError, Worker } from "bullmq";
import { assertFunction, assertInteger, assertOptions } from "../_validate.ts";
import { cancelChannel, type JobData } from "./_channel.ts";
import type { Redis } from "ioredis";
import {
  assertConnection,
  connect,
  type RedisConnection,
  template,
} from "./_connection.ts";
import { type Codec, encodeValue, jsonCodec } from "./codec.ts";
import { encodeFailure } from "./remote_error.ts";

/** What `serve` passes to its function with each item. */
export interface ServeContext {
  /**
   * Aborts when the run that sent the job cancels it (its call was aborted,
   * or timed out) and on `close({ handBack: true })`. The job's outcome no
   * longer counts once it aborts, so stop early.
   */
  readonly signal: AbortSignal;
  /** The BullMQ job id (`<runId>/<stage>/<itemId>/<attempt>` with a run id). */
  readonly jobId: string;
  /** The item's id in its run (`ctx.itemId` there), as a string. */
  readonly itemId: string;
  /**
   * How many times this job has been handed to a worker, from `1`: above 1
   * after a worker died (or lost its lock) with the job, or handed it back.
   */
  readonly delivery: number;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** Where Redis is: a `redis://` URL or ioredis options. */
  connection: RedisConnection;
  /**
   * Jobs this worker runs at the same time.
   * @default {1}
   */
  concurrency?: number;
  /**
   * How long a running job's lock lasts (ms); the worker renews it every half
   * of that. A worker that dies (even `kill -9`) lets it expire, and the next
   * stalled check on any live worker gives the job to another: it comes back
   * within about `lockDurationMs + stalledIntervalMs` (10 s by default,
   * BullMQ's own defaults take about 60 s). The function must not block its
   * event loop that long (the lock would lapse and the job run twice): raise
   * it for long synchronous work, or run that on threads.
   * @default {5000}
   */
  lockDurationMs?: number;
  /**
   * How often this worker looks for stalled jobs (ms): jobs whose lock has
   * expired, which it puts back to waiting.
   * @default {5000}
   */
  stalledIntervalMs?: number;
  /**
   * How many times a job may stall (lose its worker) and still be delivered
   * again; one more and it fails (the pipeline sees a `RemoteError`, which its
   * stage may retry). A job that kills its worker twice is likely the cause.
   * @default {1}
   */
  maxStalledCount?: number;
  /**
   * Decodes items and encodes results; must match the `remote` side.
   * @default {jsonCodec}
   */
  codec?: Codec;
  /**
   * BullMQ's key prefix; must match the `remote` side.
   * @default {"bull"}
   */
  prefix?: string;
  /**
   * Receives Redis connection errors (the worker keeps reconnecting on its
   * own) and BullMQ worker errors. Nothing is printed by default.
   * @default {() => {}}
   */
  onError?: (error: Error) => void;
}

/** Options of {@linkcode Server.close}. */
export interface ServeCloseOptions {
  /**
   * `false`: take no new job and let the running ones finish (their results
   * are delivered); `true`: abort their `ctx.signal` and put them back to
   * waiting at once, for another worker (their results are dropped). A
   * `close({ handBack: true })` while a plain `close()` waits hands the rest
   * back.
   * @default {false}
   */
  handBack?: boolean;
}

/** A running worker, made by {@linkcode serve}. */
export interface Server {
  /** The queue it serves. */
  readonly name: string;
  /** Jobs running now. */
  readonly running: number;
  /**
   * Resolves once the worker is connected and listening for jobs and cancels.
   * @returns A promise that resolves when ready.
   */
  ready(): Promise<void>;
  /**
   * Stops the worker and closes its Redis connections; see
   * {@linkcode ServeCloseOptions} for what happens to running jobs.
   * @param options `handBack`.
   * @returns A promise that resolves when the worker is closed.
   */
  close(options?: ServeCloseOptions): Promise<void>;
  /** `close()` (finishing the running jobs), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** One running job. */
interface Running {
  readonly controller: AbortController;
  /** Settles the job's race at once: the job was cancelled or handed back. */
  stop: (how: "cancel" | "handBack") => void;
  how: "cancel" | "handBack" | undefined;
}

const RECENT_CANCELS = 1000;

/**
 * Runs `fn(item, ctx)` for the jobs of queue `name`, sent by
 * {@linkcode remote} from any number of pipelines: a BullMQ `Worker` with
 * pipeline-friendly stalled-job settings, a cancel channel, and sluice's
 * codec and error encoding. Start it in any number of processes, on any
 * machines that reach the Redis server; each takes up to `concurrency` jobs.
 *
 * Delivery is at least once: a worker that dies mid-job (even `kill -9`)
 * loses nothing, its job is delivered again (after at most about
 * `lockDurationMs + stalledIntervalMs`), so `fn` may run more than once for
 * an item and should be idempotent; the pipeline still takes exactly one
 * result per item. An error `fn` throws reaches the pipeline with the same
 * `name` and `message` (a {@linkcode RemoteError}). A cancelled job (its call
 * was aborted) gets its `ctx.signal` aborted, stops counting at once (its
 * result is dropped), and is removed from Redis.
 *
 * The worker reconnects on its own when Redis goes away and comes back.
 *
 * @param name The queue's name (no `:`); the `remote` side uses the same.
 * @param fn The work: receives the decoded item and a {@linkcode ServeContext}.
 * @param options `connection` (required), `concurrency`, stalled-job settings,
 * `codec`, `prefix`, `onError`.
 * @returns The running {@linkcode Server}.
 * @throws {TypeError} When an argument is not of the documented type.
 * @throws {RangeError} When a number is out of range.
 *
 * @example A worker process (runs against `REDIS_URL` when it is set)
 * ```ts
 * import { serve } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const url = Deno.env.get("REDIS_URL");
 * if (url) {
 *   const worker = serve(
 *     "double",
 *     (n: number, ctx) => {
 *       ctx.signal.throwIfAborted();
 *       return n * 2;
 *     },
 *     { connection: url, concurrency: 4 },
 *   );
 *   await worker.ready();
 *   assert.equal(worker.running, 0);
 *   await worker.close();
 * }
 * ```
 */
export function serve<I = unknown, R = unknown>(
  name: string,
  fn: (item: I, ctx: ServeContext) => R | PromiseLike<R>,
  options: ServeOptions,
): Server {
  if (typeof name !== "string" || name === "" || name.includes(":")) {
    throw new TypeError(
      `'name' must be a non-empty string without ":": current value is ${
        JSON.stringify(name)
      }`,
    );
  }
  assertFunction("fn", fn);
  assertOptions("options", options, "serve()", [
    "connection",
    "concurrency",
    "lockDurationMs",
    "stalledIntervalMs",
    "maxStalledCount",
    "codec",
    "prefix",
    "onError",
  ]);
  const {
    connection,
    concurrency = 1,
    lockDurationMs = 5000,
    stalledIntervalMs = 5000,
    maxStalledCount = 1,
    codec = jsonCodec,
    prefix = "bull",
    onError = () => {},
  } = options ?? ({} as ServeOptions);
  assertConnection(connection);
  assertInteger("concurrency", concurrency, 1);
  assertInteger("lockDurationMs", lockDurationMs, 1);
  assertInteger("stalledIntervalMs", stalledIntervalMs, 1);
  assertInteger("maxStalledCount", maxStalledCount, 0);
  assertFunction("onError", onError);

  const running = new Map<string, Running>();
  // Cancels that arrived before their job started here (or for jobs that
  // run elsewhere): checked when a job starts. Bounded, oldest dropped.
  const recentCancels = new Set<string>();
  // Jobs cancelled here, removed from Redis once BullMQ has failed them.
  const toRemove = new Set<string>();
  const removals = new Set<Promise<unknown>>();
  let handingBack = false;

  // The Worker copies this client for its connections (it blocks on them).
  const copies: Redis[] = [];
  const client = template(
    connection,
    { maxRetriesPerRequest: null },
    onError,
    (copy) => copies.push(copy),
  );
  const subscriber = connect(
    connection,
    { maxRetriesPerRequest: null },
    onError,
  );
  const channel = cancelChannel(prefix, name);
  const subscribed = subscriber.subscribe(channel);
  subscribed.catch(onError);
  subscriber.on("message", (from: string, jobId: string) => {
    if (from !== channel) return;
    const job = running.get(jobId);
    if (job) return job.stop("cancel");
    recentCancels.add(jobId);
    if (recentCancels.size > RECENT_CANCELS) {
      recentCancels.delete(recentCancels.values().next().value as string);
    }
  });

  const processor = async (job: Job<JobData, string>, token?: string) => {
    const jobId = job.id as string;
    const controller = new AbortController();
    const entry: Running = { controller, how: undefined, stop() {} };
    running.set(jobId, entry);
    try {
      // One promise settled by whichever comes first: the call's outcome, or
      // a stop (cancel, hand-back), which does not wait for the call.
      const outcome = await new Promise<string>((resolve, reject) => {
        entry.stop = (how) => {
          if (entry.how) return;
          entry.how = how;
          controller.abort(
            new DOMException(
              how === "cancel"
                ? `The run cancelled job ${jobId}`
                : `The worker is closing: job ${jobId} goes back to the queue`,
              "AbortError",
            ),
          );
          resolve("");
        };
        if (recentCancels.delete(jobId)) return entry.stop("cancel");
        if (handingBack) return entry.stop("handBack");
        const itemId = job.data.itemId;
        let called: unknown;
        try {
          called = fn(codec.decode(job.data.item) as I, {
            signal: controller.signal,
            jobId,
            itemId,
            delivery: job.attemptsStarted || 1,
          });
        } catch (error) {
          return reject(error);
        }
        Promise.resolve(called).then((result) => {
          try {
            resolve(encodeValue(codec, result, "result", itemId));
          } catch (error) {
            reject(error);
          }
        }, reject);
      });
      if (entry.how === "handBack") {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (entry.how === "cancel") {
        toRemove.add(jobId);
        throw new Error(encodeFailure(controller.signal.reason));
      }
      return outcome;
    } catch (error) {
      if (error instanceof WaitingError) throw error;
      if (entry.how === "handBack") {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (entry.how === "cancel") toRemove.add(jobId);
      if (error instanceof Error && error.message.startsWith("sluice-error:")) {
        throw error;
      }
      throw new Error(encodeFailure(error));
    } finally {
      running.delete(jobId);
    }
  };

  const worker = new Worker<JobData, string>(name, processor, {
    connection: client,
    concurrency,
    lockDuration: lockDurationMs,
    stalledInterval: stalledIntervalMs,
    maxStalledCount,
    prefix,
  });
  worker.on("error", onError);
  worker.on("failed", (job) => {
    if (!job?.id || !toRemove.delete(job.id)) return;
    const removal = job.remove().catch(onError);
    removals.add(removal);
    removal.finally(() => removals.delete(removal));
  });

  let closing: Promise<void> | undefined;
  const server: Server = {
    name,
    get running() {
      return running.size;
    },
    async ready() {
      await Promise.all([worker.waitUntilReady(), subscribed]);
    },
    close(options?: ServeCloseOptions) {
      try {
        assertOptions("options", options, "server.close()", ["handBack"]);
      } catch (error) {
        return Promise.reject(error);
      }
      const handBack = options?.handBack ?? false;
      if (handBack) {
        handingBack = true;
        for (const job of running.values()) job.stop("handBack");
      }
      closing ??= (async () => {
        try {
          await worker.close();
          await Promise.all(removals);
        } finally {
          subscriber.disconnect();
          client.disconnect();
          for (const copy of copies) copy.disconnect();
        }
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}
