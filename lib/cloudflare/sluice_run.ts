import { SSE_HEADERS, toSSE } from "../sse.ts";
import {
  type ErrorData,
  errorData,
  HANDLE_OP,
  type Op,
  OP_PATH,
  type Ops,
  type Outcome,
  RUN_HEADER,
} from "./_protocol.ts";
import type { RunObjectState } from "./types.ts";

/**
 * What {@linkcode SluiceRun.start} returns: a `Flow` (its results in input
 * order), or any async iterable with `abort()`.
 */
export interface HostedRun<T = unknown> extends AsyncIterable<T> {
  /** Stops the run; its iteration then fails with `reason`. */
  abort(reason?: unknown): Promise<void>;
  /** Items that failed for good and were skipped (a `Flow`'s). */
  readonly failures?: readonly { itemId: unknown; error: unknown }[];
}

/** Where a run hosted by a {@linkcode SluiceRun} is. */
export type RunStatus = "idle" | "running" | "done" | "failed" | "aborted";

/** How long a `poll` waits for a new outcome before answering empty (ms). */
const POLL_MS = 20_000;

/**
 * The Durable Object class of sluice's runs on Cloudflare: one object per
 * run, named by the run's id. It collects the outcomes of the run's
 * {@linkcode remote} calls (reported by {@linkcode consume}), keyed by call,
 * in its storage: the first outcome of a call is kept and later ones are
 * ignored, so a message delivered twice gives one result. It wakes the
 * waiting calls, tells consumers which messages to drop (calls already done
 * or aborted, every call of an aborted run), and discards outcomes that
 * arrive after the run was aborted.
 *
 * It can host the run itself, so the run outlives the request that started
 * it: extend the class and implement {@linkcode SluiceRun.start}; bind the
 * subclass in `wrangler.toml`, and route requests to it with
 * {@linkcode runFetch}. Requests (the last path segment names the action):
 *
 * - `POST …/start` with the run's input as JSON body: starts the run (once;
 *   a second start answers with the status). `202` and the status.
 * - `GET …/events`: the results as Server-Sent Events (`toSSE`) in input
 *   order, each with `id: <index>`, then `event: done`, or `event: error`
 *   when the run failed or was aborted. With a `Last-Event-ID` header (an
 *   `EventSource` reconnecting sends it), the stream starts after that
 *   index. Any number of readers, at any time during or after the run.
 * - `POST …/abort`: aborts the run (its pending calls reject; messages not
 *   yet started are dropped; results arriving later are discarded).
 * - `GET …/status`: `{ runId, status, results, failures, recorded, dropped,
 *   discarded, duplicates, batches }` as JSON: results streamed, items
 *   skipped by `onError` with their errors, outcomes recorded, messages
 *   dropped (aborted calls), results discarded (after the abort), deliveries
 *   ignored as duplicates, and consumer batches seen.
 *
 * Results are held in memory for the SSE readers (the object stays in
 * memory while results keep arriving); the calls' outcomes are also in
 * storage, so a run started again under the same id after the object was
 * evicted takes them instead of running those items again.
 *
 * @typeParam Env The Worker's bindings.
 *
 * @example A run hosted in the object (a Worker's source: needs workerd)
 * ```ts ignore
 * import { map, pipeline } from "sluice";
 * import {
 *   consume,
 *   type QueueProducer,
 *   remote,
 *   type RunNamespace,
 *   runFetch,
 *   SluiceRun,
 * } from "sluice/cloudflare";
 *
 * interface Env { SLUICE_QUEUE: QueueProducer; SLUICE_RUNS: RunNamespace }
 *
 * export class Runs extends SluiceRun<Env> {
 *   override start(input: unknown) {
 *     const rerank = remote<string, number>("rerank", {
 *       queue: this.env.SLUICE_QUEUE,
 *       results: this,
 *     });
 *     return pipeline(map(rerank, { concurrency: 32, onError: "skip" }))
 *       .run(input as string[]);
 *   }
 * }
 *
 * export default {
 *   fetch(request: Request, env: Env): Promise<Response> {
 *     // /runs/<runId>/start | events | abort | status
 *     const [, runs, runId] = new URL(request.url).pathname.split("/");
 *     if (runs !== "runs" || !runId) {
 *       return Promise.resolve(new Response("not found", { status: 404 }));
 *     }
 *     return runFetch(env.SLUICE_RUNS, runId, request);
 *   },
 *   queue: consume<Env>({ rerank: (text: string) => text.length }, {
 *     deadLetterQueue: "sluice-dlq",
 *   }),
 * };
 * ```
 */
export class SluiceRun<Env = unknown> {
  /** The object's state (its storage), as given to the constructor. */
  protected readonly state: RunObjectState;
  /** The Worker's bindings, as given to the constructor. */
  protected readonly env: Env;
  #runId: string | undefined;
  #status: RunStatus = "idle";
  #run: HostedRun | undefined;
  readonly #outputs: unknown[] = [];
  #end: { ok: true } | { ok: false; error: unknown } | undefined;
  /** Readers and polls waiting for something new. */
  readonly #wakers = new Set<() => void>();
  /** Outcomes recorded, in the order they were (this instance's log). */
  readonly #log: Outcome[] = [];
  readonly #outcomes = new Map<string, Outcome>();
  readonly #cancelled = new Set<string>();
  readonly #epoch: string = crypto.randomUUID();
  #dropped = 0;
  #discarded = 0;
  #duplicates = 0;
  #batches = 0;

  /**
   * Called by the runtime, with the object's state and the Worker's
   * bindings; loads the outcomes already stored.
   *
   * @param state The Durable Object's state.
   * @param env The Worker's bindings.
   */
  constructor(state: RunObjectState, env: Env) {
    this.state = state;
    this.env = env;
    state.blockConcurrencyWhile(async () => {
      const [outcomes, cancelled, status] = await Promise.all([
        state.storage.list({ prefix: "r:" }),
        state.storage.list({ prefix: "c:" }),
        state.storage.get("status"),
      ]);
      for (const outcome of outcomes.values()) {
        this.#record(outcome as Outcome);
      }
      for (const key of cancelled.keys()) this.#cancelled.add(key.slice(2));
      if (status === "aborted") this.#status = "aborted";
    });
  }

  /** The id of the run this object holds, once it has received a request. */
  get runId(): string | undefined {
    return this.#runId;
  }

  /**
   * The run this object hosts, started by `POST …/start`: build the pipeline
   * (its remote stages with `results: this`) over `input` and return its
   * flow. Not implemented here: a subclass that hosts runs overrides it.
   *
   * @param input The JSON body of the start request.
   * @param runId The run's id.
   * @returns The running flow.
   * @throws {TypeError} Always, in this base class.
   */
  start(input: unknown, runId: string): HostedRun {
    void input;
    throw new TypeError(
      `SluiceRun hosts no run: extend it and implement start(input, runId) (run "${runId}")`,
    );
  }

  /**
   * Answers the Worker's requests (see the class) and those of
   * {@linkcode remote} and {@linkcode consume}.
   *
   * @param request A request routed by {@linkcode runFetch}.
   * @returns The response.
   */
  async fetch(request: Request): Promise<Response> {
    const runId = request.headers.get(RUN_HEADER);
    if (!runId) {
      return text(
        400,
        `no ${RUN_HEADER} header: route requests with runFetch()`,
      );
    }
    this.#runId ??= runId;
    const url = new URL(request.url);
    if (url.pathname.startsWith(OP_PATH)) {
      const name = url.pathname.slice(OP_PATH.length) as Op;
      if (!OPS.includes(name)) return text(404, `no op ${name}`);
      const answer = await this[HANDLE_OP](
        runId,
        name,
        await request.json(),
        request.signal,
      );
      return Response.json(answer);
    }
    const action = url.pathname.split("/").pop();
    switch (`${request.method} ${action}`) {
      case "POST start":
        return this.#start(runId, await request.json().catch(() => undefined));
      case "GET events":
        return this.#events(request);
      case "POST abort":
        await this.#abort(
          new DOMException(`run "${runId}" was aborted`, "AbortError"),
        );
        return Response.json(this.#statusBody());
      case "GET status":
        return Response.json(this.#statusBody());
      default:
        return text(
          404,
          `${request.method} ${url.pathname}: a run answers POST …/start, GET …/events, POST …/abort, GET …/status`,
        );
    }
  }

  /** Answers an op of the protocol (in this isolate, or from `fetch`). */
  async [HANDLE_OP](
    runId: string,
    name: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<unknown> {
    this.#runId ??= runId;
    switch (name as Op) {
      case "poll":
        return await this.#poll(body as Ops["poll"]["in"], signal);
      case "check":
        return this.#check(body as Ops["check"]["in"]);
      case "report":
        return await this.#report(body as Ops["report"]["in"]);
      case "dead":
        return await this.#dead(body as Ops["dead"]["in"]);
      case "cancel":
        return await this.#cancel(body as Ops["cancel"]["in"]);
    }
  }

  // ---- the protocol --------------------------------------------------------

  async #poll(
    { after, epoch }: Ops["poll"]["in"],
    signal?: AbortSignal,
  ): Promise<Ops["poll"]["out"]> {
    const from = epoch === this.#epoch ? after : 0;
    if (this.#log.length <= from && !signal?.aborted) {
      await this.#changed(POLL_MS, signal);
    }
    return {
      epoch: this.#epoch,
      next: this.#log.length,
      entries: this.#log.slice(from),
    };
  }

  #check({ keys }: Ops["check"]["in"]): Ops["check"]["out"] {
    this.#batches++;
    if (this.#status === "aborted") {
      this.#dropped += keys.length;
      return { aborted: true, skip: keys };
    }
    const skip = keys.filter((key) =>
      this.#outcomes.has(key) || this.#cancelled.has(key)
    );
    for (const key of skip) {
      if (this.#outcomes.has(key)) this.#duplicates++;
      else this.#dropped++;
    }
    return { aborted: false, skip };
  }

  async #report(
    { results, errors }: Ops["report"]["in"],
  ): Promise<Ops["report"]["out"]> {
    if (this.#status === "aborted") {
      this.#discarded += results.length;
      return { aborted: true };
    }
    const writes: Record<string, unknown> = {};
    for (const { key, error, attempts } of errors) {
      writes[`e:${key}`] = { error, attempts };
    }
    const fresh: Outcome[] = [];
    for (const { key, value } of results) {
      if (this.#outcomes.has(key) || writes[`r:${key}`]) {
        this.#duplicates++; // a message delivered twice
        continue;
      }
      const outcome: Outcome = { key, ok: true, value };
      writes[`r:${key}`] = outcome;
      fresh.push(outcome);
    }
    await this.#put(writes);
    this.#recordAll(fresh);
    return { aborted: false };
  }

  async #dead({ queue, entries }: Ops["dead"]["in"]): Promise<
    Ops["dead"]["out"]
  > {
    if (this.#status === "aborted") {
      this.#discarded += entries.length;
      return { aborted: true };
    }
    const writes: Record<string, unknown> = {};
    const fresh: Outcome[] = [];
    for (const { key, task, itemId } of entries) {
      if (this.#outcomes.has(key) || writes[`r:${key}`]) continue;
      const last = await this.state.storage.get(`e:${key}`) as
        | { error: ErrorData; attempts: number }
        | undefined;
      const outcome: Outcome = {
        key,
        ok: false,
        task,
        itemId,
        queue,
        attempts: last?.attempts ?? 0,
        error: last?.error,
      };
      writes[`r:${key}`] = outcome;
      fresh.push(outcome);
    }
    await this.#put(writes);
    this.#recordAll(fresh);
    return { aborted: false };
  }

  async #cancel({ keys }: Ops["cancel"]["in"]): Promise<Ops["cancel"]["out"]> {
    const writes: Record<string, unknown> = {};
    for (const key of keys) {
      if (this.#outcomes.has(key) || this.#cancelled.has(key)) continue;
      this.#cancelled.add(key);
      writes[`c:${key}`] = 1;
    }
    await this.#put(writes);
    return { aborted: this.#status === "aborted" };
  }

  #record(outcome: Outcome): void {
    if (this.#outcomes.has(outcome.key)) return;
    this.#outcomes.set(outcome.key, outcome);
    this.#log.push(outcome);
  }

  #recordAll(outcomes: Outcome[]): void {
    if (outcomes.length === 0) return;
    for (const outcome of outcomes) this.#record(outcome);
    this.#wake();
  }

  async #put(writes: Record<string, unknown>): Promise<void> {
    const entries = Object.entries(writes);
    for (let i = 0; i < entries.length; i += 128) {
      await this.state.storage.put(
        Object.fromEntries(entries.slice(i, i + 128)),
      );
    }
  }

  #wake(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of wakers) wake();
  }

  /** Resolves at the next change, after `ms`, or when `signal` aborts. */
  #changed(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = ms === Infinity ? undefined : setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.#wakers.add(done);
    });
  }

  // ---- the hosted run -------------------------------------------------------

  #start(runId: string, input: unknown): Response {
    if (this.#status !== "idle") {
      return Response.json(this.#statusBody(), {
        status: this.#status === "aborted" ? 409 : 200,
      });
    }
    let run: HostedRun;
    try {
      run = this.start(input, runId);
    } catch (error) {
      return text(500, `start() failed: ${errorData(error).message}`);
    }
    this.#run = run;
    this.#status = "running";
    (async () => {
      try {
        for await (const value of run) {
          this.#outputs.push(value);
          this.#wake();
        }
        this.#end = { ok: true };
        if (this.#status === "running") this.#status = "done";
      } catch (error) {
        this.#end = { ok: false, error };
        if (this.#status === "running") this.#status = "failed";
      }
      this.#wake();
    })();
    return Response.json(this.#statusBody(), { status: 202 });
  }

  async #abort(reason: unknown): Promise<void> {
    if (this.#status !== "idle" && this.#status !== "running") return;
    const wasRunning = this.#status === "running";
    this.#status = "aborted";
    await this.state.storage.put({ status: "aborted" });
    if (wasRunning) await this.#run?.abort(reason);
    this.#end ??= { ok: false, error: reason };
    this.#wake();
  }

  #events(request: Request): Response {
    if (this.#status === "idle" && !this.#end) {
      return text(404, `run "${this.#runId}" has not started`);
    }
    const last = request.headers.get("last-event-id") ??
      new URL(request.url).searchParams.get("lastEventId");
    let start = 0;
    if (last !== null && last !== "") {
      if (!/^\d+$/.test(last)) {
        return text(
          400,
          `'Last-Event-ID' must be the index of an event: current value is ${
            JSON.stringify(last)
          }`,
        );
      }
      start = Number(last) + 1;
    }
    const stream = toSSE(this.#results(start), {
      id: (_, i) => String(i),
      startIndex: start,
      signal: request.signal,
    });
    return new Response(stream, { headers: SSE_HEADERS });
  }

  /** The run's results from index `start`, as they come. */
  #results(start: number): AsyncIterableIterator<unknown> {
    let i = start;
    let closed = false;
    let stop: (() => void) | undefined;
    const it: AsyncIterableIterator<unknown> = {
      next: async () => {
        while (!closed) {
          if (i < this.#outputs.length) {
            return { done: false, value: this.#outputs[i++] };
          }
          const end = this.#end;
          if (end) {
            closed = true;
            if (!end.ok) throw end.error;
            break;
          }
          const stopped = new AbortController();
          stop = () => stopped.abort();
          await this.#changed(Infinity, stopped.signal);
        }
        return { done: true, value: undefined };
      },
      return: () => {
        closed = true;
        stop?.();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  #statusBody() {
    return {
      runId: this.#runId,
      status: this.#status,
      results: this.#outputs.length,
      failures: (this.#run?.failures ?? []).map((f) => ({
        itemId: f.itemId,
        error: errorData(f.error),
      })),
      recorded: this.#log.length,
      dropped: this.#dropped,
      discarded: this.#discarded,
      duplicates: this.#duplicates,
      batches: this.#batches,
    };
  }
}

const OPS: readonly Op[] = ["poll", "check", "report", "dead", "cancel"];

function text(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
