import { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { TaskContext } from "../types.ts";
import {
  assertDuration,
  assertFunction,
  assertOptions,
  assertStringOrFunction,
  show,
} from "../_validate.ts";
import { cancelChannel, type JobData } from "./_channel.ts";
import {
  assertConnection,
  connect,
  describeConnection,
  type RedisConnection,
  template,
} from "./_connection.ts";
import { jobIdOf } from "./_job_id.ts";
import { type Codec, encodeValue, jsonCodec } from "./codec.ts";
import { JobLostError } from "./job_lost_error.ts";
import { decodeFailure } from "./remote_error.ts";

/**
 * Which finished jobs Redis keeps, as BullMQ's `removeOnComplete` /
 * `removeOnFail`: `true` removes a job as it finishes, `false` keeps all, a
 * number keeps that many of the newest, `{ age, count }` keeps those younger
 * than `age` seconds (and at most `count`). BullMQ prunes when a later job
 * of the queue finishes, not on a timer.
 */
export type Keep =
  | boolean
  | number
  | { age: number; count?: number }
  | { count: number };

/** Retention of a remote stage's finished jobs. */
export interface RemoteRetention {
  /**
   * Completed jobs and their results: what a restarted run (same `runId`)
   * takes instead of running the items again.
   * @default {{ age: 3600 }}
   */
  completed?: Keep;
  /**
   * Failed jobs, with their errors, for inspection (a restarted run never
   * reuses a failure: it runs the item again).
   * @default {{ age: 3600 }}
   */
  failed?: Keep;
}

/** Options of {@linkcode remote}. */
export interface RemoteOptions {
  /** Where Redis is: a `redis://` URL or ioredis options. */
  connection: RedisConnection;
  /**
   * The run's id, so that a run started again after a crash finds the jobs
   * it already has: a job's id is `<runId>/<stage>/<itemId>/<attempt>`. A
   * string, or a function of the call's context (for one id per run of the
   * same pipeline: `(ctx) => (ctx.context as { runId: string }).runId`, with
   * `run(source, { context: { runId } })`). Item ids must be stable across
   * restarts: the input index, or `run(source, { id })`. Without it, every
   * call gets a fresh job id and nothing is ever reused.
   * @default {undefined}
   */
  runId?: string | ((ctx: TaskContext) => string);
  /**
   * Encodes items and decodes results; must match the `serve` side.
   * @default {jsonCodec}
   */
  codec?: Codec;
  /**
   * BullMQ's key prefix; must match the `serve` side.
   * @default {"bull"}
   */
  prefix?: string;
  /**
   * Which finished jobs Redis keeps (see {@linkcode RemoteRetention}).
   * @default {{ completed: { age: 3600 }, failed: { age: 3600 } }}
   */
  retention?: RemoteRetention;
  /**
   * How long a call waits to reach Redis before it fails with a
   * {@linkcode JobLostError} (ms).
   * @default {5000}
   */
  connectTimeoutMs?: number;
  /**
   * How often the jobs waited on longer than this are looked up in Redis (ms),
   * in case their event was missed (a reconnect) or they vanished.
   * @default {5000}
   */
  checkIntervalMs?: number;
  /**
   * How long the connections stay open once no call is outstanding (ms); a
   * process with nothing else to do exits after that.
   * @default {250}
   */
  idleCloseMs?: number;
  /**
   * Receives Redis connection errors; nothing is printed by default (the
   * calls fail with a {@linkcode JobLostError} either way).
   * @default {() => {}}
   */
  onError?: (error: Error) => void;
}

/** The stage function {@linkcode remote} returns, with its connections' handle. */
export interface RemoteStage<I = unknown, R = unknown> {
  /**
   * Runs `item` on a worker and resolves with its result.
   * @param item The item (encoded with the codec at once).
   * @param ctx The stage's context: `signal`, `itemId`, `attempt`, `stage`.
   * @returns The worker's result.
   */
  (item: I, ctx: TaskContext): Promise<R>;
  /** Calls waiting for their job now. */
  readonly outstanding: number;
  /**
   * Closes the Redis connections now; calls still waiting reject with a
   * {@linkcode JobLostError}. A later call opens them again. (They also
   * close on their own `idleCloseMs` after the last call.)
   * @returns A promise that resolves when the connections are closed.
   */
  close(): Promise<void>;
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface Conn {
  client: Redis;
  /** The template of the QueueEvents' connection, and its copies. */
  eventsClients: Redis[];
  queue: Queue<JobData, string>;
  events: QueueEvents;
  closed: boolean;
}

interface Wait {
  resolve(encoded: string): void;
  reject(error: unknown): void;
  conn: Conn;
  itemId: unknown;
  /** When the job was known to exist (added or adopted); 0 before. */
  since: number;
}

/**
 * A stage function that runs each call as a BullMQ job on the workers of
 * queue `name` (see {@linkcode serve}), for `map`, `filter`, `Pool` or
 * `Batcher`. Everything else about the stage stays as in one process: its
 * `concurrency` bounds the jobs outstanding (backpressure across machines),
 * order and batching are the pipeline's, and its `retry`, `timeoutMs` and
 * `onError` apply to the calls.
 *
 * Each call encodes the item (a value the codec cannot encode fails the call
 * at once with a `TypeError` naming the item and the path), adds one job
 * (BullMQ `attempts: 1`: retries are the stage's), and waits for its result,
 * or rejects with a {@linkcode RemoteError} carrying the worker's error
 * `name` and `message`. The flow takes exactly one result per item, even
 * when a worker died and the job ran again. With a `runId`, a job already
 * completed (by an earlier process of the same run) is not run again: the
 * call takes its stored result; one still waiting or running is waited for.
 *
 * Aborting a call (`ctx.signal`: the run is aborted, or the stage's
 * `timeoutMs`) rejects it at once with the signal's reason, removes its job
 * if it waits, and aborts `ctx.signal` on the worker running it, which then
 * removes it: nothing of an aborted call stays in Redis.
 *
 * When Redis cannot be reached within `connectTimeoutMs`, or the connection
 * drops while calls wait, they fail with a {@linkcode JobLostError} (retry
 * them with `retryIf: (e) => e instanceof JobLostError`); nothing hangs.
 * The connections (two per `remote()`) open at the first call and close
 * `idleCloseMs` after the last one, or on `close()`.
 *
 * @param name The queue's name (no `:`), as given to `serve`.
 * @param options `connection` (required), `runId`, `codec`, `prefix`,
 * `retention`, `connectTimeoutMs`, `checkIntervalMs`, `idleCloseMs`,
 * `onError`.
 * @returns The stage function, with `close()`.
 * @throws {TypeError} When an argument is not of the documented type.
 *
 * @example Bad payloads fail at the call, before Redis is reached
 * ```ts
 * import { map, pipeline } from "sluice";
 * import { remote } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const rerank = remote<{ id: number; score?: () => number }, number>(
 *   "rerank",
 *   { connection: "redis://127.0.0.1:6379", runId: "nightly-2024-06-01" },
 * );
 * const flow = pipeline(map(rerank, { concurrency: 64, onError: "skip" }))
 *   .run([{ id: 1, score: () => 1 }]);
 * assert.deepEqual(await flow.collect(), []);
 * assert.equal(
 *   (flow.failures[0].error as Error).message,
 *   "item 0 cannot be sent: item.score is a function",
 * );
 * await rerank.close();
 * ```
 */
export function remote<I = unknown, R = unknown>(
  name: string,
  options: RemoteOptions,
): RemoteStage<I, R> {
  const client = new RemoteClient(name, options);
  const stage = (item: I, ctx: TaskContext) =>
    client.call(item, ctx) as Promise<R>;
  return Object.defineProperties(stage, {
    outstanding: { get: () => client.outstanding },
    close: { value: () => client.close() },
    [Symbol.asyncDispose]: { value: () => client.close() },
  }) as RemoteStage<I, R>;
}

const DEFAULT_KEEP = { age: 3600 };

class RemoteClient {
  readonly #name: string;
  readonly #connection: RedisConnection;
  readonly #runId: ((ctx: TaskContext) => string) | undefined;
  readonly #codec: Codec;
  readonly #prefix: string;
  readonly #keepCompleted: Keep;
  readonly #keepFailed: Keep;
  readonly #connectTimeoutMs: number;
  readonly #checkIntervalMs: number;
  readonly #idleCloseMs: number;
  readonly #onError: (error: Error) => void;
  readonly #channel: string;
  /** For job ids without a run id: a fresh one per call. */
  readonly #anonymous = crypto.randomUUID();
  #seq = 0;

  #conn: Promise<Conn> | undefined;
  /** The openings that connected. */
  readonly #ready = new WeakSet<Promise<Conn>>();
  /** The connections of each opening, ready or not. */
  readonly #pending = new WeakMap<Promise<Conn>, Conn>();
  readonly #waits = new Map<string, Wait>();
  readonly #cleanups = new Set<Promise<void>>();
  #busy = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #checkTimer: ReturnType<typeof setInterval> | undefined;

  constructor(name: string, options: RemoteOptions) {
    if (typeof name !== "string" || name === "" || name.includes(":")) {
      throw new TypeError(
        `'name' must be a non-empty string without ":": current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    assertOptions("options", options, "remote()", [
      "connection",
      "runId",
      "codec",
      "prefix",
      "retention",
      "connectTimeoutMs",
      "checkIntervalMs",
      "idleCloseMs",
      "onError",
    ]);
    const {
      connection,
      runId,
      codec = jsonCodec,
      prefix = "bull",
      retention = {},
      connectTimeoutMs = 5000,
      checkIntervalMs = 5000,
      idleCloseMs = 250,
      onError = () => {},
    } = options ?? ({} as RemoteOptions);
    assertConnection(connection);
    assertStringOrFunction("runId", runId);
    assertOptions("retention", retention, "retention", ["completed", "failed"]);
    assertDuration("connectTimeoutMs", connectTimeoutMs, { positive: true });
    assertDuration("checkIntervalMs", checkIntervalMs, { positive: true });
    assertDuration("idleCloseMs", idleCloseMs);
    assertFunction("onError", onError);
    this.#name = name;
    this.#connection = connection;
    this.#runId = typeof runId === "string" ? () => runId : runId;
    this.#codec = codec;
    this.#prefix = prefix;
    this.#keepCompleted = retention.completed ?? DEFAULT_KEEP;
    this.#keepFailed = retention.failed ?? DEFAULT_KEEP;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#checkIntervalMs = checkIntervalMs;
    this.#idleCloseMs = idleCloseMs;
    this.#onError = onError;
    this.#channel = cancelChannel(prefix, name);
  }

  get outstanding(): number {
    return this.#waits.size;
  }

  async call(item: unknown, ctx: TaskContext): Promise<unknown> {
    const signal = ctx?.signal;
    signal?.throwIfAborted();
    const itemId = ctx?.itemId;
    const jobId = this.#jobId(ctx);
    const data: JobData = {
      item: encodeValue(this.#codec, item, "item", itemId),
      itemId: String(itemId),
    };
    this.#busy++;
    clearTimeout(this.#idleTimer);
    let wait: Wait | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const conn = await this.#open(jobId, itemId);
      signal?.throwIfAborted();
      const result = new Promise<string>((resolve, reject) => {
        wait = { resolve, reject, conn, itemId, since: 0 };
      });
      result.catch(() => {});
      const w = wait as Wait;
      this.#waits.set(jobId, w);
      this.#watch();
      let added: Promise<unknown> | undefined;
      onAbort = () => {
        this.#drop(jobId, w);
        w.reject(signal!.reason);
        this.#cancel(conn, jobId, added);
      };
      signal?.addEventListener("abort", onAbort, { once: true });

      const [status, raw] = await this.#command(
        conn,
        jobId,
        itemId,
        "look up",
        () => conn.queue.backend.isFinished(jobId, true),
      ) as [number, string | null];
      if (status === 1) {
        this.#settle(jobId, true, parseReturn(raw));
      } else if (status !== 0 && !signal?.aborted) {
        // -1: no such job; 2: a failure of an earlier process of the run,
        // which a restart runs again.
        if (status === 2) {
          await this.#command(
            conn,
            jobId,
            itemId,
            "replace",
            () => conn.queue.remove(jobId),
          );
        }
        if (!signal?.aborted) {
          added = this.#command(
            conn,
            jobId,
            itemId,
            "add",
            () =>
              conn.queue.add(ctx?.stage ?? this.#name, data, {
                jobId,
                attempts: 1,
                removeOnComplete: this.#keepCompleted,
                removeOnFail: this.#keepFailed,
              }),
          );
          await added;
        }
      }
      w.since = Date.now();
      return this.#codec.decode(await result);
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      if (wait) this.#drop(jobId, wait);
      this.#busy--;
      this.#idle();
    }
  }

  close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    return this.#shutdown();
  }

  #jobId(ctx: TaskContext): string {
    if (!this.#runId) return `${this.#anonymous}/${++this.#seq}`;
    const runId = this.#runId(ctx);
    if (typeof runId !== "string" || runId === "") {
      throw new TypeError(
        `'runId' must return a non-empty string: current value is ${
          show(runId)
        }`,
      );
    }
    return jobIdOf(runId, ctx.stage, ctx.itemId, ctx.attempt);
  }

  /** The open connections, opening them (within `connectTimeoutMs`). */
  async #open(jobId: string, itemId: unknown): Promise<Conn> {
    let opening = this.#conn;
    // Already connected: no timeout race (it costs a timer signal, a promise
    // and two listeners per call).
    if (opening && this.#ready.has(opening)) {
      const conn = this.#pending.get(opening)!;
      if (conn.client.status === "ready") return conn;
    }
    if (!opening) {
      const conn = this.#connect();
      const fresh = opening = this.#conn = Promise.all([
        conn.queue.waitUntilReady(),
        conn.events.waitUntilReady(),
      ]).then(() => conn, async (error) => {
        await teardown(conn);
        throw error;
      });
      this.#pending.set(fresh, conn);
      fresh.then(() => this.#ready.add(fresh), () => {});
    }
    const timeout = AbortSignal.timeout(this.#connectTimeoutMs);
    let onTimeout: (() => void) | undefined;
    try {
      const conn = await Promise.race([
        opening,
        new Promise<never>((_, reject) => {
          onTimeout = () =>
            reject(
              new JobLostError(
                `remote("${this.#name}"): cannot reach Redis at ${
                  describeConnection(this.#connection)
                } within ${this.#connectTimeoutMs} ms to send item ${
                  String(itemId)
                }`,
                { jobId },
              ),
            );
          timeout.addEventListener("abort", onTimeout, { once: true });
        }),
      ]);
      if (conn.client.status !== "ready") {
        throw new JobLostError(
          `remote("${this.#name}"): Redis at ${
            describeConnection(this.#connection)
          } is unreachable (${conn.client.status}): cannot send item ${
            String(itemId)
          }`,
          { jobId },
        );
      }
      return conn;
    } catch (error) {
      if (this.#conn === opening && !this.#ready.has(opening)) {
        // Never connected: start afresh at the next call.
        this.#conn = undefined;
        teardown(this.#pending.get(opening)!);
      }
      if (error instanceof JobLostError) throw error;
      throw new JobLostError(
        `remote("${this.#name}"): cannot reach Redis at ${
          describeConnection(this.#connection)
        } to send item ${String(itemId)}: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { jobId, cause: error },
      );
    } finally {
      if (onTimeout) timeout.removeEventListener("abort", onTimeout);
    }
  }

  #connect(): Conn {
    const onError = this.#onError;
    const client = connect(this.#connection, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    }, onError);
    const lost = () => this.#lose(conn);
    const eventsClients: Redis[] = [];
    const eventsClient = template(
      this.#connection,
      { maxRetriesPerRequest: null },
      onError,
      (copy) => {
        eventsClients.push(copy);
        copy.on("close", lost);
      },
    );
    eventsClients.push(eventsClient);
    const queue = new Queue<JobData, string>(this.#name, {
      connection: client,
      prefix: this.#prefix,
    });
    const events = new QueueEvents(this.#name, {
      connection: eventsClient,
      prefix: this.#prefix,
    });
    queue.on("error", onError);
    events.on("error", onError);
    const conn: Conn = {
      client,
      eventsClients,
      queue,
      events,
      closed: false,
    };
    events.on("completed", ({ jobId, returnvalue }) => {
      this.#settle(jobId, true, returnvalue as unknown as string);
    });
    events.on("failed", ({ jobId, failedReason }) => {
      this.#settle(jobId, false, failedReason);
    });
    client.on("close", lost);
    return conn;
  }

  /** Runs a Redis command, turning a connection failure into a JobLostError. */
  async #command<T>(
    conn: Conn,
    jobId: string,
    itemId: unknown,
    what: string,
    command: () => Promise<T>,
  ): Promise<T> {
    try {
      return await command();
    } catch (error) {
      if (conn.client.status !== "ready" || isConnectionError(error)) {
        throw new JobLostError(
          `remote("${this.#name}"): lost the connection to Redis at ${
            describeConnection(this.#connection)
          } (could not ${what} job ${jobId} of item ${String(itemId)})`,
          { jobId, cause: error },
        );
      }
      throw error;
    }
  }

  #settle(jobId: string, ok: boolean, value: string): void {
    const wait = this.#waits.get(jobId);
    if (!wait) return;
    this.#drop(jobId, wait);
    if (ok) wait.resolve(value);
    else wait.reject(decodeFailure(value, jobId));
  }

  #drop(jobId: string, wait: Wait): void {
    if (this.#waits.get(jobId) === wait) this.#waits.delete(jobId);
    if (this.#waits.size === 0) {
      clearInterval(this.#checkTimer);
      this.#checkTimer = undefined;
    }
  }

  /** Fails the calls waiting on `conn`: its connection dropped. */
  #lose(conn: Conn): void {
    for (const [jobId, wait] of this.#waits) {
      if (wait.conn !== conn) continue;
      this.#drop(jobId, wait);
      wait.reject(
        new JobLostError(
          `remote("${this.#name}"): lost the connection to Redis at ${
            describeConnection(this.#connection)
          } while waiting for job ${jobId} of item ${
            String(wait.itemId)
          } (the job may still run)`,
          { jobId },
        ),
      );
    }
  }

  /** Removes an aborted call's job, or asks its worker to stop it. */
  #cancel(conn: Conn, jobId: string, added: Promise<unknown> | undefined) {
    const cleanup = (async () => {
      await added?.catch(() => {});
      const removed = await conn.queue.remove(jobId).catch(() => 0);
      if (removed !== 1) {
        await conn.client.publish(this.#channel, jobId).catch(() => {});
      }
    })();
    this.#cleanups.add(cleanup);
    cleanup.finally(() => {
      this.#cleanups.delete(cleanup);
      this.#idle();
    });
  }

  /** Looks up jobs waited on for long, in case their event was missed. */
  #watch(): void {
    if (this.#checkTimer !== undefined) return;
    this.#checkTimer = setInterval(() => {
      const old = Date.now() - this.#checkIntervalMs;
      for (const [jobId, wait] of this.#waits) {
        if (wait.since === 0 || wait.since > old) continue;
        wait.conn.queue.backend.isFinished(jobId, true).then((answer) => {
          const [status, raw] = answer as [number, string | null];
          if (status === 1) this.#settle(jobId, true, parseReturn(raw));
          else if (status === 2) this.#settle(jobId, false, raw ?? "");
          else if (status === -1 && this.#waits.get(jobId) === wait) {
            this.#drop(jobId, wait);
            wait.reject(
              new JobLostError(
                `remote("${this.#name}"): job ${jobId} of item ${
                  String(wait.itemId)
                } is no longer in Redis (Redis restarted without persistence, or the job was removed)`,
                { jobId },
              ),
            );
          }
        }, () => {});
      }
    }, this.#checkIntervalMs);
  }

  #idle(): void {
    if (this.#busy || this.#cleanups.size || this.#waits.size) return;
    if (!this.#conn) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#shutdown(), this.#idleCloseMs);
  }

  async #shutdown(): Promise<void> {
    const opening = this.#conn;
    this.#conn = undefined;
    await Promise.all(this.#cleanups);
    if (!opening) return;
    const conn = this.#pending.get(opening)!;
    this.#lose(conn);
    await teardown(conn);
  }
}

async function teardown(conn: Conn): Promise<void> {
  if (conn.closed) return;
  conn.closed = true;
  conn.client.disconnect();
  for (const client of conn.eventsClients) client.disconnect();
  await Promise.allSettled([conn.events.close(), conn.queue.close()]);
}

function parseReturn(raw: string | null): string {
  return raw == null ? "" : JSON.parse(raw);
}

function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === "MaxRetriesPerRequestError" ||
    /writeable|Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE/.test(
      error.message,
    );
}
