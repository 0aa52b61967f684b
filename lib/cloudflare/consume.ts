import { assertInteger, assertOptions, show } from "../_validate.ts";
import { assertJson } from "./_json.ts";
import {
  type ErrorData,
  errorData,
  isTaskMessage,
  namespaceLink,
  type TaskMessage,
} from "./_protocol.ts";
import type { QueueBatch, QueueMessage, RunNamespace } from "./types.ts";

/** What a task of {@linkcode consume} receives besides its item. */
export interface ConsumeContext<Env = unknown> {
  /** The run's id. */
  readonly runId: string;
  /** The item's id (as a string). */
  readonly itemId: string;
  /** The task's name. */
  readonly task: string;
  /** This delivery of the message, from 1 (`message.attempts`). */
  readonly attempt: number;
  /** The queue message's id. */
  readonly messageId: string;
  /** The Worker's bindings. */
  readonly env: Env;
}

/** A task of {@linkcode consume}: its result must be JSON. */
export type ConsumeTask<Env = unknown> = (
  // deno-lint-ignore no-explicit-any
  item: any,
  ctx: ConsumeContext<Env>,
) => unknown;

/** Options of {@linkcode consume}. */
export interface ConsumeOptions<Env = unknown> {
  /**
   * The Durable Object namespace of the runs' {@linkcode SluiceRun} class.
   * @default {(env) => env.SLUICE_RUNS}
   */
  results?: (env: Env) => RunNamespace;
  /**
   * The name of the queue's dead-letter queue (its `dead_letter_queue` in
   * `wrangler.toml`), when this Worker consumes it too: the messages of its
   * batches are reported as failed for good, and each call rejects with a
   * {@linkcode DeadLetterError}. Without it, consume the dead-letter queue
   * with {@linkcode deadLetters} (or nothing: a call whose message is
   * dropped then waits until its stage's `timeoutMs`).
   * @default {undefined}
   */
  deadLetterQueue?: string;
  /**
   * The delay before a failed message is delivered again, in seconds
   * (`message.retry({ delaySeconds })`): a number, or a function of the
   * attempts so far. Without it, the queue's `retry_delay`.
   * @default {undefined}
   */
  retryDelay?: number | ((attempts: number) => number);
  /**
   * How many tasks of one batch run at the same time.
   * @default {Infinity}
   */
  concurrency?: number;
}

/** A queue consumer's handler: `export default { queue: consume(…) }`. */
export type QueueHandler<Env = unknown> = (
  batch: QueueBatch,
  env: Env,
  ctx?: unknown,
) => Promise<void>;

/**
 * The queue consumer of {@linkcode remote} stages: a `queue(batch, env, ctx)`
 * handler that runs each message's call with the task of that name in
 * `tasks`. It honours the queue's batch settings (`max_batch_size`,
 * `max_batch_timeout`: a batch is what the queue delivers), and for each
 * run in the batch:
 *
 * 1. asks the run's {@linkcode SluiceRun} which messages to drop, and
 *    acknowledges them without running them: every message of an aborted
 *    run, calls aborted one by one, and calls whose outcome is already
 *    recorded (a message delivered twice);
 * 2. runs the others (`concurrency` at a time), each `task(item, ctx)`;
 * 3. reports their results and the failed attempts' errors to the object
 *    (one request per run and batch), then acknowledges each message that
 *    succeeded (`message.ack()`) and retries each that failed
 *    (`message.retry({ delaySeconds })`). The queue delivers a failed
 *    message again up to its `max_retries`, then moves it to its
 *    `dead_letter_queue`, whose consumer ({@linkcode deadLetters}, or this
 *    one with `deadLetterQueue`) fails the call with a
 *    {@linkcode DeadLetterError} carrying the last attempt's error.
 *
 * A task's result must be JSON (as the items: a result JSON cannot carry is
 * a failed attempt with a `TypeError` naming the path). When the object
 * cannot be reached, the batch's messages are retried. Messages that are not
 * sluice's are acknowledged and ignored. Nothing runs at module scope.
 *
 * @param tasks The tasks, by name (the names given to `remote`).
 * @param options `results`, `deadLetterQueue`, `retryDelay`, `concurrency`.
 * @returns The handler.
 * @throws {TypeError} When an argument is not of the documented type.
 * @throws {RangeError} When `concurrency` is not a positive integer or
 * Infinity.
 *
 * @example Running a batch (here with stand-ins for the bindings)
 * ```ts
 * import { consume, type QueueMessage } from "sluice/cloudflare";
 * import assert from "node:assert/strict";
 *
 * const reports: unknown[] = [];
 * const env = {
 *   SLUICE_RUNS: { // stands for the Durable Object namespace
 *     idFromName: (name: string) => name,
 *     get: () => ({
 *       fetch: async (request: Request) => {
 *         const op = new URL(request.url).pathname.split("/").pop();
 *         if (op === "report") reports.push(await request.json());
 *         return Response.json({ aborted: false, skip: [] });
 *       },
 *     }),
 *   },
 * };
 * const acked: string[] = [];
 * const message = (id: string, item: number): QueueMessage => ({
 *   id,
 *   attempts: 1,
 *   body: { sluice: 1, run: "r1", task: "square", key: id, itemId: id, item },
 *   ack: () => void acked.push(id),
 *   retry: () => {},
 * });
 * const queue = consume({ square: (n: number) => n * n });
 * await queue({ queue: "tasks", messages: [message("a", 3), message("b", 4)] }, env);
 * assert.deepEqual(acked, ["a", "b"]);
 * assert.deepEqual(reports, [{
 *   results: [{ key: "a", value: 9 }, { key: "b", value: 16 }],
 *   errors: [],
 * }]);
 * ```
 */
export function consume<Env = unknown>(
  tasks: Record<string, ConsumeTask<Env>>,
  options?: ConsumeOptions<Env>,
): QueueHandler<Env> {
  if (typeof tasks !== "object" || tasks === null) {
    throw new TypeError(
      `'tasks' must be an object of task functions by name: current value is ${
        show(tasks)
      }`,
    );
  }
  for (const [name, fn] of Object.entries(tasks)) {
    if (typeof fn !== "function") {
      throw new TypeError(
        `'tasks.${name}' must be a function: current value is ${show(fn)}`,
      );
    }
  }
  assertOptions("options", options, "consume()", [
    "results",
    "deadLetterQueue",
    "retryDelay",
    "concurrency",
  ]);
  const {
    results = defaultResults<Env>,
    deadLetterQueue,
    retryDelay,
    concurrency = Infinity,
  } = options ?? {};
  if (typeof results !== "function") {
    throw new TypeError(
      `'results' must be a function of env: current value is ${show(results)}`,
    );
  }
  if (deadLetterQueue !== undefined && typeof deadLetterQueue !== "string") {
    throw new TypeError(
      `'deadLetterQueue' must be a queue name: current value is ${
        show(deadLetterQueue)
      }`,
    );
  }
  if (
    retryDelay !== undefined && typeof retryDelay !== "function" &&
    !(typeof retryDelay === "number" && retryDelay >= 0)
  ) {
    throw new TypeError(
      `'retryDelay' must be a number of seconds >= 0 or a function: current value is ${
        show(retryDelay)
      }`,
    );
  }
  assertInteger("concurrency", concurrency, 1, true);
  const own = new Map(Object.entries(tasks));
  const delayOf = (attempts: number): number | undefined =>
    typeof retryDelay === "function" ? retryDelay(attempts) : retryDelay;

  return async (batch: QueueBatch, env: Env): Promise<void> => {
    const byRun = groupByRun(batch.messages);
    if (deadLetterQueue !== undefined && batch.queue === deadLetterQueue) {
      await reportDead(byRun, results(env), batch.queue);
      return;
    }
    const ns = results(env);
    await Promise.all([...byRun].map(async ([runId, messages]) => {
      const link = namespaceLink(ns, runId);
      let run: typeof messages;
      try {
        const { skip } = await link.op("check", {
          keys: messages.map(([, body]) => body.key),
        });
        const dropped = new Set(skip);
        run = messages.filter(([message, body]) => {
          if (!dropped.has(body.key)) return true;
          message.ack();
          return false;
        });
      } catch {
        for (const [message] of messages) retry(message);
        return;
      }
      const done: { key: string; value?: unknown }[] = [];
      const errors: { key: string; error: ErrorData; attempts: number }[] = [];
      const ok: QueueMessage[] = [];
      const failed: QueueMessage[] = [];
      let next = 0;
      const worker = async () => {
        while (next < run.length) {
          const [message, body] = run[next++];
          try {
            const task = own.get(body.task);
            if (!task) {
              throw new TypeError(
                `consume() has no task ${
                  JSON.stringify(body.task)
                }: its tasks are ${
                  [...own.keys()].map((k) => JSON.stringify(k)).join(", ")
                }`,
              );
            }
            const value = await task(body.item, {
              runId,
              itemId: body.itemId,
              task: body.task,
              attempt: message.attempts,
              messageId: message.id,
              env,
            });
            assertJson(
              value,
              "result",
              `the result of item ${body.itemId} cannot be sent back`,
            );
            done.push({ key: body.key, value });
            ok.push(message);
          } catch (error) {
            errors.push({
              key: body.key,
              error: errorData(error),
              attempts: message.attempts,
            });
            failed.push(message);
          }
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(concurrency, run.length) }, worker),
      );
      try {
        if (done.length || errors.length) {
          await link.op("report", { results: done, errors });
        }
      } catch {
        for (const message of ok) retry(message);
        for (const message of failed) retry(message);
        return;
      }
      for (const message of ok) message.ack();
      for (const message of failed) retry(message);
    }));
  };

  function retry(message: QueueMessage): void {
    const delaySeconds = delayOf(message.attempts);
    message.retry(delaySeconds === undefined ? undefined : { delaySeconds });
  }
}

/**
 * The consumer of a dead-letter queue of {@linkcode remote} stages: each
 * message in it failed on every delivery, so its call fails with a
 * {@linkcode DeadLetterError} (carrying the last attempt's error, which
 * {@linkcode consume} reported); then the message is acknowledged. Use it
 * when the dead-letter queue is consumed apart from the tasks (or route
 * batches by `batch.queue` yourself); `consume(tasks, { deadLetterQueue })`
 * does the same for a Worker that consumes both.
 *
 * @param options `results`: the runs' namespace (default
 * `(env) => env.SLUICE_RUNS`).
 * @returns The handler.
 * @throws {TypeError} When `options.results` is not a function.
 *
 * @example Reporting a dead letter (here with stand-ins for the bindings)
 * ```ts
 * import { deadLetters, type QueueMessage } from "sluice/cloudflare";
 * import assert from "node:assert/strict";
 *
 * const reports: unknown[] = [];
 * const env = {
 *   SLUICE_RUNS: {
 *     idFromName: (name: string) => name,
 *     get: () => ({
 *       fetch: async (request: Request) => {
 *         reports.push(await request.json());
 *         return Response.json({ aborted: false });
 *       },
 *     }),
 *   },
 * };
 * let acked = false;
 * const message: QueueMessage = {
 *   id: "m1",
 *   attempts: 1,
 *   body: { sluice: 1, run: "r1", task: "rerank", key: "k7", itemId: "7" },
 *   ack: () => void (acked = true),
 *   retry: () => {},
 * };
 * await deadLetters()({ queue: "sluice-dlq", messages: [message] }, env);
 * assert(acked);
 * assert.deepEqual(reports, [{
 *   queue: "sluice-dlq",
 *   entries: [{ key: "k7", task: "rerank", itemId: "7" }],
 * }]);
 * ```
 */
export function deadLetters<Env = unknown>(
  options?: Pick<ConsumeOptions<Env>, "results">,
): QueueHandler<Env> {
  assertOptions("options", options, "deadLetters()", ["results"]);
  const { results = defaultResults<Env> } = options ?? {};
  if (typeof results !== "function") {
    throw new TypeError(
      `'results' must be a function of env: current value is ${show(results)}`,
    );
  }
  return (batch: QueueBatch, env: Env) =>
    reportDead(groupByRun(batch.messages), results(env), batch.queue);
}

function defaultResults<Env>(env: Env): RunNamespace {
  const ns = (env as { SLUICE_RUNS?: RunNamespace } | undefined)?.SLUICE_RUNS;
  if (!ns) {
    throw new TypeError(
      "env.SLUICE_RUNS is missing: bind the SluiceRun class as SLUICE_RUNS, or pass 'results'",
    );
  }
  return ns;
}

/** The batch's messages of sluice by run; the others are acknowledged. */
function groupByRun(
  messages: readonly QueueMessage[],
): Map<string, [QueueMessage, TaskMessage][]> {
  const byRun = new Map<string, [QueueMessage, TaskMessage][]>();
  for (const message of messages) {
    const body = message.body;
    if (!isTaskMessage(body)) {
      message.ack();
      continue;
    }
    let list = byRun.get(body.run);
    if (!list) byRun.set(body.run, list = []);
    list.push([message, body]);
  }
  return byRun;
}

async function reportDead(
  byRun: Map<string, [QueueMessage, TaskMessage][]>,
  ns: RunNamespace,
  queue: string,
): Promise<void> {
  await Promise.all([...byRun].map(async ([runId, messages]) => {
    try {
      await namespaceLink(ns, runId).op("dead", {
        queue,
        entries: messages.map(([, { key, task, itemId }]) => ({
          key,
          task,
          itemId,
        })),
      });
    } catch {
      for (const [message] of messages) message.retry();
      return;
    }
    for (const [message] of messages) message.ack();
  }));
}
