import type { TaskContext } from "../types.ts";
import { assertOptions, assertStringOrFunction, show } from "../_validate.ts";
import { assertJson, byteLength, MAX_MESSAGE_BYTES } from "./_json.ts";
import {
  isLocalRun,
  isNamespace,
  keyOf,
  localLink,
  type LocalRun,
  namespaceLink,
  type Outcome,
  type RunLink,
  type TaskMessage,
} from "./_protocol.ts";
import { DeadLetterError } from "./dead_letter_error.ts";
import type { SluiceRun } from "./sluice_run.ts";
import type { QueueProducer, RunNamespace } from "./types.ts";

/** Options of {@linkcode remote}. */
export interface RemoteOptions {
  /** The queue producer binding the calls are sent to (`env.SLUICE_QUEUE`). */
  queue: QueueProducer;
  /**
   * Where the results come back: the Durable Object namespace binding of a
   * {@linkcode SluiceRun} class (`env.SLUICE_RUNS`), or, for a run hosted in
   * that object, the object itself (`this` inside `start()`).
   */
  // deno-lint-ignore no-explicit-any
  results: RunNamespace | SluiceRun<any>;
  /**
   * The run's id: the name of its Durable Object, where the results are
   * collected. A string, or a function of the call's context. A run started
   * again with the same id takes the results already recorded instead of
   * running those items again. Required with a namespace; with the object
   * itself, its own run id.
   * @default {the hosting object's run id}
   */
  runId?: string | ((ctx: TaskContext) => string);
}

/** The stage function {@linkcode remote} returns. */
export interface RemoteStage<I = unknown, R = unknown> {
  /**
   * Sends `item` to the queue and resolves with the consumer's result.
   * @param item The item (checked and encoded as JSON at once).
   * @param ctx The stage's context: `signal`, `itemId`, `attempt`, `stage`.
   * @returns The task's result.
   */
  (item: I, ctx: TaskContext): Promise<R>;
  /** Calls waiting for their result now. */
  readonly outstanding: number;
}

interface Wait {
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/** One run's results as this isolate follows them. */
interface Channel {
  readonly runId: string;
  readonly link: RunLink;
  readonly waits: Map<string, Wait>;
  /** Outcomes nobody waited for yet (recorded before this call came). */
  readonly arrived: Map<string, Outcome>;
  after: number;
  epoch: string;
  polling: AbortController | undefined;
}

interface Send {
  body: TaskMessage;
  bytes: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** At most this many messages, and bytes, in one `sendBatch`. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 250_000;

/**
 * A stage function that runs each call on a Cloudflare Queue consumer (see
 * {@linkcode consume}), with results coming back through a
 * {@linkcode SluiceRun} Durable Object; for `map`, `filter`, `Pool` or
 * `Batcher`. Everything else about the stage stays as in one isolate: its
 * `concurrency` bounds the messages outstanding, order and batching are the
 * pipeline's, and its `retry`, `timeoutMs` and `onError` apply to the calls.
 *
 * Each call checks the item (a value JSON cannot carry faithfully fails the
 * call at once with a `TypeError` naming the item and the path; a message
 * over 128 KB with a `RangeError`), sends one message (the calls of one
 * microtask go together in `sendBatch`, 100 at most), and waits for its
 * outcome in the run's Durable Object: the result, or a
 * {@linkcode DeadLetterError} when the message failed on every delivery and
 * went to the dead-letter queue. The flow takes exactly one result per item,
 * however many times the message was delivered. A call's key is
 * `<stage>/<itemId>/<attempt>`, so a stage retry sends a new message.
 *
 * Aborting a call (`ctx.signal`: the run is aborted, or the stage's
 * `timeoutMs`) rejects it at once with the signal's reason and tells the
 * Durable Object, whose consumer then acknowledges the message without
 * running it (a call already running finishes, and its result is dropped).
 *
 * @param name The task's name, a key of the map given to `consume`.
 * @param options `queue` and `results` (required), `runId`.
 * @returns The stage function.
 * @throws {TypeError} When an argument is not of the documented type.
 *
 * @example Bad payloads fail at the call, before anything is sent
 * ```ts
 * import { map, pipeline } from "sluice";
 * import { remote, type RunNamespace } from "sluice/cloudflare";
 * import assert from "node:assert/strict";
 *
 * const sent: unknown[] = [];
 * const queue = { // stands for env.SLUICE_QUEUE
 *   send: async (body: unknown) => void sent.push(body),
 *   sendBatch: async (batch: Iterable<{ body: unknown }>) =>
 *     void sent.push(...[...batch].map((m) => m.body)),
 * };
 * const results: RunNamespace = { // stands for env.SLUICE_RUNS
 *   idFromName: (name) => name,
 *   get: () => ({ fetch: () => new Promise<Response>(() => {}) }),
 * };
 * const rerank = remote<{ id: number; score?: () => number }, number>(
 *   "rerank",
 *   { queue, results, runId: "nightly-2024-06-01" },
 * );
 * const flow = pipeline(map(rerank, { onError: "skip" }))
 *   .run([{ id: 1, score: () => 1 }]);
 * assert.deepEqual(await flow.collect(), []);
 * assert.equal(
 *   (flow.failures[0].error as Error).message,
 *   "item 0 cannot be sent: item.score is a function",
 * );
 * assert.equal(sent.length, 0);
 * ```
 */
export function remote<I = unknown, R = unknown>(
  name: string,
  options: RemoteOptions,
): RemoteStage<I, R> {
  const client = new RemoteClient(name, options);
  const stage = (item: I, ctx: TaskContext) =>
    client.call(item, ctx) as Promise<R>;
  return Object.defineProperty(stage, "outstanding", {
    get: () => client.outstanding,
  }) as RemoteStage<I, R>;
}

class RemoteClient {
  readonly #name: string;
  readonly #queue: QueueProducer;
  readonly #results: RunNamespace | LocalRun;
  readonly #runId: ((ctx: TaskContext) => string) | undefined;
  readonly #channels = new Map<string, Channel>();
  #sends: Send[] = [];
  #outstanding = 0;

  constructor(name: string, options: RemoteOptions) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(
        `'name' must be a non-empty string: current value is ${show(name)}`,
      );
    }
    assertOptions("options", options, "remote()", [
      "queue",
      "results",
      "runId",
    ]);
    const { queue, results, runId } = options ?? ({} as RemoteOptions);
    if (
      typeof queue !== "object" || queue === null ||
      typeof queue.sendBatch !== "function"
    ) {
      throw new TypeError(
        `'queue' must be a queue producer binding (env.SLUICE_QUEUE): current value is ${
          show(queue)
        }`,
      );
    }
    if (!isNamespace(results) && !isLocalRun(results)) {
      throw new TypeError(
        `'results' must be a Durable Object namespace binding of a SluiceRun class (env.SLUICE_RUNS), or the SluiceRun itself: current value is ${
          show(results)
        }`,
      );
    }
    assertStringOrFunction("runId", runId);
    if (runId === undefined && !isLocalRun(results)) {
      throw new TypeError(
        "'runId' is required when 'results' is a namespace: current value is undefined",
      );
    }
    this.#name = name;
    this.#queue = queue;
    this.#results = results;
    this.#runId = typeof runId === "string" ? () => runId : runId;
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  async call(item: unknown, ctx: TaskContext): Promise<unknown> {
    const signal = ctx?.signal;
    signal?.throwIfAborted();
    const itemId = String(ctx?.itemId);
    const runId = this.#runIdOf(ctx);
    assertJson(item, "item", `item ${itemId} cannot be sent`);
    const body: TaskMessage = {
      sluice: 1,
      run: runId,
      task: this.#name,
      key: keyOf(ctx?.stage ?? this.#name, itemId, ctx?.attempt ?? 1),
      itemId,
      item,
    };
    const bytes = byteLength(JSON.stringify(body));
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new RangeError(
        `item ${itemId} cannot be sent: its message is ${bytes} bytes, over the queue's limit of ${MAX_MESSAGE_BYTES}`,
      );
    }
    const channel = this.#channel(runId);
    const { key } = body;
    let wait: Wait | undefined;
    const outcome = new Promise<Outcome>((resolve, reject) => {
      wait = { resolve, reject };
    });
    const onAbort = () => {
      this.#drop(channel, key, wait!);
      wait!.reject(signal!.reason);
      channel.link.op("cancel", { keys: [key] }).catch(() => {});
    };
    this.#outstanding++;
    try {
      const earlier = channel.arrived.get(key);
      if (earlier) {
        channel.arrived.delete(key);
        return this.#settled(earlier, runId);
      }
      channel.waits.set(key, wait!);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#poll(channel);
      await Promise.race([this.#send(body, bytes), outcome]);
      return this.#settled(await outcome, runId);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#drop(channel, key, wait!);
      this.#outstanding--;
    }
  }

  #runIdOf(ctx: TaskContext): string {
    const runId = this.#runId
      ? this.#runId(ctx)
      : (this.#results as LocalRun).runId;
    if (typeof runId !== "string" || runId === "") {
      throw new TypeError(
        this.#runId
          ? `'runId' must return a non-empty string: current value is ${
            show(runId)
          }`
          : `remote("${this.#name}"): the SluiceRun given as 'results' hosts no run yet (call it from start())`,
      );
    }
    return runId;
  }

  #settled(outcome: Outcome, runId: string): unknown {
    if (outcome.ok) return outcome.value;
    throw new DeadLetterError({
      runId,
      itemId: outcome.itemId,
      task: outcome.task,
      queue: outcome.queue,
      attempts: outcome.attempts,
      lastError: outcome.error,
    });
  }

  #channel(runId: string): Channel {
    let channel = this.#channels.get(runId);
    if (!channel) {
      const results = this.#results;
      channel = {
        runId,
        link: isLocalRun(results)
          ? localLink(results, runId)
          : namespaceLink(results, runId),
        waits: new Map(),
        arrived: new Map(),
        after: 0,
        epoch: "",
        polling: undefined,
      };
      this.#channels.set(runId, channel);
    }
    return channel;
  }

  #drop(channel: Channel, key: string, wait: Wait): void {
    if (channel.waits.get(key) === wait) channel.waits.delete(key);
    if (channel.waits.size === 0) {
      channel.polling?.abort();
      channel.polling = undefined;
      this.#channels.delete(channel.runId);
    }
  }

  /** Follows the run's outcomes while calls wait for them. */
  #poll(channel: Channel): void {
    if (channel.polling) return;
    const polling = channel.polling = new AbortController();
    (async () => {
      while (!polling.signal.aborted && channel.waits.size > 0) {
        let answer;
        try {
          answer = await channel.link.op(
            "poll",
            { after: channel.after, epoch: channel.epoch },
            polling.signal,
          );
        } catch (error) {
          if (polling.signal.aborted) return;
          const lost = new Error(
            `remote("${this.#name}"): cannot follow the results of run "${channel.runId}": ${
              (error as Error)?.message ?? String(error)
            }`,
            { cause: error },
          );
          for (const wait of [...channel.waits.values()]) wait.reject(lost);
          return;
        }
        if (answer.epoch !== channel.epoch) {
          // A new instance of the object: its log starts again.
          channel.epoch = answer.epoch;
        }
        channel.after = answer.next;
        for (const outcome of answer.entries) {
          const wait = channel.waits.get(outcome.key);
          if (wait) wait.resolve(outcome);
          else channel.arrived.set(outcome.key, outcome);
        }
      }
    })();
  }

  /** Sends `body`; the sends of one microtask go out in `sendBatch`es. */
  #send(body: TaskMessage, bytes: number): Promise<never> {
    return new Promise<void>((resolve, reject) => {
      if (this.#sends.length === 0) queueMicrotask(() => this.#flush());
      this.#sends.push({ body, bytes, resolve, reject });
    }).then(() => new Promise<never>(() => {}));
  }

  #flush(): void {
    const sends = this.#sends;
    this.#sends = [];
    for (let start = 0; start < sends.length;) {
      let end = start;
      let bytes = 0;
      while (
        end < sends.length && end - start < BATCH_MESSAGES &&
        (end === start || bytes + sends[end].bytes <= BATCH_BYTES)
      ) bytes += sends[end++].bytes;
      const chunk = sends.slice(start, end);
      start = end;
      this.#queue.sendBatch(
        chunk.map((s) => ({ body: s.body, contentType: "json" })),
      ).then(
        () => chunk.forEach((s) => s.resolve()),
        (error) => {
          const failed = new Error(
            `remote("${this.#name}"): the queue refused the message: ${
              (error as Error)?.message ?? String(error)
            }`,
            { cause: error },
          );
          chunk.forEach((s) => s.reject(failed));
        },
      );
    }
  }
}
