/**
 * The SSE demo app, shared by every entry point (`deno.ts`, `node.ts`,
 * `bun.ts`, `worker.ts`): a simulated RAG pipeline whose results are streamed
 * to the browser as Server-Sent Events, each the moment input order allows.
 *
 * ```
 * retrieve (uneven latency, 4 at a time)
 *   → batch (up to 4, at most 80 ms) → rerank (one call per batch, 2 at a time)
 *   → flatten → enrich (4 at a time)
 * ```
 *
 * Routes:
 * - `GET /`: the page (`static/index.html`), when the entry point passes it
 *   (Cloudflare serves it as a static asset instead).
 * - `GET /sluice-dashboard.js`: the `<sluice-dashboard>` element
 *   (`web/sluice-dashboard.js`), when the entry point passes it (on
 *   Cloudflare, `static/sluice-dashboard.js` links to it).
 * - `GET /api/to-sse?n=24&dropAfter=0`: `new Response(toSSE(flow, …))`,
 *   sluice's own framing, with heartbeats, progress events and a final
 *   `done`/`error`. The progress events are compact (`toWire`: a keyframe,
 *   then deltas); `progress=full` sends the whole `flow.stats()` instead.
 * - `GET /api/hono-sse?n=24&dropAfter=0`: the same run written with Hono's
 *   `streamSSE`, its `onAbort` wired to `flow.abort()`.
 * - On both SSE routes, `dropAfter=K` closes the connection after K results
 *   (a simulated network drop, without a final event) so the browser's
 *   `EventSource` reconnects and the handler resumes.
 * - `GET /api/stats`: what the runs did (calls started, finished, aborted),
 *   for the page's cancel report and the runtime tests.
 * - `GET /api/config`: `{ remoteRerank }`, whether `rerank=remote` is
 *   available.
 *
 * Remote re-rank (optional): with the `remoteRerank` option (a stage function
 * the entry point makes, e.g. `remote()` of `sluice/bullmq` in
 * `examples/cluster/`), `?rerank=remote` on either SSE route sends each
 * re-rank batch to worker processes, and each answer says which process
 * served it (`servedBy`). This file never imports a queue client, so the
 * edge builds stay as they are.
 *
 * Logging: with the `log` option, one line per run that did not deliver
 * everything: the client went away (`run #3 (to-sse): the client went away
 * after 2 of 60 results; 4 calls in flight aborted`), the connection was
 * dropped on purpose (`dropAfter`), or the run failed.
 *
 * Both SSE routes resume: a reconnecting `EventSource` sends the last id it
 * received as `Last-Event-ID`; the ids are the query indices and the source
 * is deterministic (latencies are seeded per query), so the handler skips
 * the queries already delivered and starts at the next one.
 *
 * @module
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
// In an application: `import { … } from "@sluice/sluice"` (JSR) or "sluice" (npm).
import {
  batch,
  flatten,
  type Flow,
  type FlowStats,
  map,
  pipeline,
  SSE_HEADERS,
  type TaskContext,
  toSSE,
} from "../../mod.ts";
import { toWire } from "../../lib/progress_wire.ts";
import type { TimerProbe } from "./_timers.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** The page served at `GET /`; without it, `/` is not routed. */
  page?: string;
  /**
   * The source of `web/sluice-dashboard.js`, served at
   * `GET /sluice-dashboard.js`; without it, that path is not routed.
   */
  dashboard?: string;
  /**
   * Multiplies every simulated latency (tests use a small one).
   * @default {1}
   */
  latencyScale?: number;
  /**
   * Number of queries when the request has no `n`.
   * @default {24}
   */
  defaultCount?: number;
  /**
   * Cadence of progress events.
   * @default {200}
   */
  progressMs?: number;
  /**
   * Idle time before a heartbeat comment (`/api/to-sse`).
   * @default {15000}
   */
  heartbeatMs?: number;
  /** Called when a call in flight sees its `ctx.signal` abort. */
  onTaskAborted?: (info: { run: number; stage: string; index: number }) => void;
  /**
   * Receives one line per run that stopped before delivering everything
   * (a disconnect, a `dropAfter` drop, a failure); the entry points pass
   * `console.log`. Without it, nothing is logged.
   */
  log?: (line: string) => void;
  /** Lists pending timers (test instrumentation, see `_timers.ts`). */
  timers?: TimerProbe;
  /**
   * Runs a re-rank batch elsewhere, for runs asked with `rerank=remote`
   * (`examples/cluster/` passes `remote("demo-rerank", …)` of
   * `sluice/bullmq`). Without it, such runs are refused (400).
   */
  remoteRerank?: (job: RerankJob, ctx: TaskContext) => Promise<RerankReply>;
}

/** A document candidate of a query. */
export interface Candidate {
  id: string;
  title: string;
  score: number;
}

/** A re-rank batch sent to a remote worker. */
export interface RerankJob {
  /** The simulated model latency (scaled), in milliseconds. */
  ms: number;
  /** Each query's candidates. */
  lists: Candidate[][];
}

/** A remote worker's answer: the lists sorted best first, and who sorted. */
export interface RerankReply {
  lists: Candidate[][];
  /** The worker process, e.g. `"bun#5678"`. */
  servedBy: string;
}

/** One streamed result: a query with its best document. */
export interface Answer {
  /** The query's position, also the SSE event id. */
  index: number;
  query: string;
  /** The best document after re-ranking. */
  top: { id: string; title: string; score: number };
  /** How many documents were retrieved. */
  docs: number;
  /** The worker process that re-ranked it (`rerank=remote` runs only). */
  servedBy?: string;
  summary: string;
  /** The simulated latency of each step (scaled), in milliseconds. */
  ms: { retrieve: number; rerank: number; enrich: number };
}

/** What a run did, reported by `GET /api/stats`. */
export interface RunRecord {
  id: number;
  route: "to-sse" | "hono-sse";
  /** Queries asked for, and the first one of this run (after a resume). */
  n: number;
  from: number;
  /** `"done"`: every result was delivered; `"stopped"`: cancelled or failed. */
  status: "running" | "done" | "stopped";
  /** Calls started, finished normally, and interrupted by `ctx.signal`. */
  started: number;
  finished: number;
  aborted: number;
  /** Calls started with an already aborted signal (should stay 0). */
  startedAfterAbort: number;
  /** Calls started and not yet returned. */
  running: number;
  /** The abort reason the first interrupted call saw (how the stop came). */
  abortReason: string | null;
  /** Results the flow yielded. */
  delivered: number;
  /** Where the re-rank stage ran. */
  rerank: "local" | "remote";
  /**
   * The results sent before the server closed the connection on purpose
   * (`dropAfter`), else `null`.
   */
  droppedAfter: number | null;
}

const QUERIES = [
  "How do I rotate an API key without downtime?",
  "What is the refund policy for annual plans?",
  "Which regions store customer data?",
  "How are webhooks retried after a failure?",
  "Can I export audit logs to S3?",
  "What rate limits apply to the search API?",
  "How do I enable SSO with Okta?",
  "Why does my build cache miss on CI?",
  "How is usage billed for idle workers?",
  "What does error E1042 mean?",
  "How do I migrate from v1 to v2 tokens?",
  "Is there an on-premise edition?",
  "How long are backups kept?",
  "How do I invite a team without email?",
  "Which TLS versions are supported?",
  "How do I cap monthly spend?",
];

const DOCS = [
  "Key management",
  "Billing FAQ",
  "Data residency",
  "Webhooks guide",
  "Audit log export",
  "API limits",
  "SAML and OIDC setup",
  "CI caching",
  "Pricing details",
  "Error reference",
  "Token migration",
  "Deployment options",
  "Backup policy",
  "Team management",
  "Security overview",
  "Budgets and alerts",
];

/** mulberry32, seeded per query: every run sees the same latencies. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A query of the simulated workload: deterministic from its index. */
interface Query {
  index: number;
  text: string;
  /** Retrieval latency: mostly 120–420 ms, one in seven 700–1300 ms. */
  retrieveMs: number;
  enrichMs: number;
  docIds: number[];
}

function query(index: number): Query {
  const r = random(1000 + index);
  const slow = r() < 0.15;
  const round = Math.round;
  const lap = Math.floor(index / QUERIES.length);
  return {
    index,
    text: QUERIES[index % QUERIES.length] + (lap > 0 ? ` (#${lap + 1})` : ""),
    retrieveMs: slow ? round(700 + r() * 600) : round(120 + r() * 300),
    enrichMs: round(60 + r() * 140),
    docIds: [0, 1, 2, 3].map(() => Math.floor(r() * DOCS.length)),
  };
}

interface Retrieved extends Query {
  candidates: Candidate[];
}

interface Ranked extends Retrieved {
  rerankMs: number;
  servedBy?: string;
}

/** Reads a non-negative integer from a query parameter or header. */
function int(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== "" && Number.isInteger(n) && n >= 0
    ? n
    : fallback;
}

const describe = (reason: unknown): string =>
  reason instanceof Error || reason instanceof DOMException
    ? `${reason.name}: ${reason.message}`
    : String(reason);

/** "1 result", "2 results". */
const plural = (n: number, noun: string): string =>
  `${n} ${noun}${n === 1 ? "" : "s"}`;

const dropReason = (): DOMException =>
  new DOMException("A simulated network drop (dropAfter)", "AbortError");

const errorJSON = (error: unknown): string =>
  JSON.stringify({
    name: error instanceof Error ? error.name : "Error",
    message: error instanceof Error ? error.message : String(error),
  });

/**
 * Builds the app.
 *
 * @param options The page, the latency scale, instrumentation hooks.
 * @returns The Hono app; serve `app.fetch` in any runtime.
 */
export function createApp(options: AppOptions = {}): Hono {
  const {
    page,
    dashboard,
    latencyScale = 1,
    defaultCount = 24,
    progressMs = 200,
    heartbeatMs = 15_000,
    onTaskAborted,
    log,
    timers,
    remoteRerank,
  } = options;
  const runs: RunRecord[] = [];
  let nextRun = 1;

  /**
   * A simulated remote call of `ms` milliseconds. Like `fetch(url, { signal:
   * ctx.signal })`, it stops at once when the run is cancelled.
   */
  function call(run: RunRecord, ms: number, ctx: TaskContext): Promise<void> {
    run.started++;
    run.running++;
    const { signal } = ctx;
    return new Promise((resolve, reject) => {
      const interrupted = () => {
        clearTimeout(timer);
        run.running--;
        if (signal.aborted) run.aborted++;
        run.abortReason ??= describe(signal.reason);
        onTaskAborted?.({ run: run.id, stage: ctx.stage, index: ctx.index });
        reject(signal.reason);
      };
      if (signal.aborted) {
        run.startedAfterAbort++;
        run.running--;
        return reject(signal.reason);
      }
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", interrupted);
        run.running--;
        run.finished++;
        resolve();
      }, ms * latencyScale);
      signal.addEventListener("abort", interrupted, { once: true });
    });
  }

  /** A re-rank batch on a remote worker, counted as `call()` counts. */
  async function callRemote(
    run: RunRecord,
    job: RerankJob,
    ctx: TaskContext,
  ): Promise<RerankReply> {
    run.started++;
    run.running++;
    try {
      const reply = await remoteRerank!(job, ctx);
      run.finished++;
      return reply;
    } catch (error) {
      if (ctx.signal.aborted) {
        run.aborted++;
        run.abortReason ??= describe(ctx.signal.reason);
        onTaskAborted?.({ run: run.id, stage: ctx.stage, index: ctx.index });
      }
      throw error;
    } finally {
      run.running--;
    }
  }

  /** The pipeline of one run; `ctx.context` is its {@linkcode RunRecord}. */
  const rag = pipeline(
    map(async (q: Query, ctx): Promise<Retrieved> => {
      await call(ctx.context as RunRecord, q.retrieveMs, ctx);
      const candidates = q.docIds.map((d, i) => ({
        id: `doc-${d}`,
        title: DOCS[d],
        score:
          Math.round((0.96 - i * 0.12 - ((q.index * 7 + d) % 10) / 50) * 100) /
          100,
      }));
      return { ...q, candidates };
    }, { name: "retrieve", concurrency: 4 }),
    batch({ name: "batch", maxSize: 4, maxWaitMs: 80 }),
    map(async (group: Retrieved[], ctx): Promise<Ranked[]> => {
      const rerankMs = 100 + 30 * group.length; // one model call per batch
      const run = ctx.context as RunRecord;
      if (run.rerank === "remote") {
        const { lists, servedBy } = await callRemote(run, {
          ms: rerankMs * latencyScale,
          lists: group.map((q) => q.candidates),
        }, ctx);
        return group.map((q, i) => ({
          ...q,
          rerankMs,
          candidates: lists[i],
          servedBy,
        }));
      }
      await call(run, rerankMs, ctx);
      return group.map((q) => ({
        ...q,
        rerankMs,
        candidates: [...q.candidates].sort((a, b) => b.score - a.score),
      }));
    }, { name: "rerank", concurrency: 2 }),
    flatten(),
    map(async (q: Ranked, ctx): Promise<Answer> => {
      await call(ctx.context as RunRecord, q.enrichMs, ctx);
      const top = q.candidates[0];
      return {
        index: q.index,
        query: q.text,
        top,
        docs: q.candidates.length,
        ...(q.servedBy ? { servedBy: q.servedBy } : {}),
        summary: `${top.title} answers this (score ${top.score}).`,
        ms: {
          retrieve: Math.round(q.retrieveMs * latencyScale),
          rerank: Math.round(q.rerankMs * latencyScale),
          enrich: Math.round(q.enrichMs * latencyScale),
        },
      };
    }, { name: "enrich", concurrency: 4 }),
  );

  /**
   * Starts a run over queries `from` to `n - 1`: deterministic, so a
   * reconnecting client resumes where it left off.
   */
  function start(
    route: RunRecord["route"],
    n: number,
    from: number,
    rerank: RunRecord["rerank"] = "local",
  ) {
    const run: RunRecord = {
      id: nextRun++,
      route,
      n,
      from,
      status: "running",
      started: 0,
      finished: 0,
      aborted: 0,
      startedAfterAbort: 0,
      running: 0,
      abortReason: null,
      delivered: 0,
      rerank,
      droppedAfter: null,
    };
    runs.push(run);
    if (runs.length > 50) runs.shift();
    const queries = (function* () {
      for (let i = from; i < n; i++) yield query(i);
    })();
    const flow: Flow<Answer> = rag.run(queries, {
      context: run,
      progressIntervalMs: progressMs,
    });
    // The final "progress" event fires once the run has settled.
    flow.addEventListener("progress", (e: CustomEvent<FlowStats>) => {
      run.delivered = e.detail.results;
      if (e.detail.done) {
        run.status = e.detail.itemsOut === n - from ? "done" : "stopped";
        if (run.status === "stopped") log?.(stopLine(run, e.detail));
      }
    });
    return { run, flow };
  }

  /** The log line of a run that stopped before delivering everything. */
  function stopLine(run: RunRecord, stats: FlowStats): string {
    const head = `run #${run.id} (${run.route})`;
    const sent = run.droppedAfter;
    if (sent !== null) {
      return `${head}: dropped the connection after ` +
        `${plural(sent, "result")} (dropAfter=${sent}); ` +
        `the client resumes after #${run.from + sent - 1}`;
    }
    const after = `after ${plural(run.delivered, "result")} of ${
      run.n - run.from
    }`;
    const calls = `${plural(run.aborted, "call")} in flight aborted`;
    if (stats.failed > 0) return `${head}: failed ${after}; ${calls}`;
    return `${head}: the client went away ${after}; ${calls}`;
  }

  /**
   * `n` from the query; the first index from `Last-Event-ID` (or `from`);
   * `requestSignal=0` (for the tests) leaves `request.signal` out, so only
   * the body's cancel can stop the run.
   */
  function params(c: {
    req: {
      query(k: string): string | undefined;
      header(k: string): string | undefined;
      raw: Request;
    };
  }) {
    const n = Math.min(int(c.req.query("n"), defaultCount), 1000);
    const last = c.req.header("Last-Event-ID");
    const from = last !== undefined && int(last, -1) >= 0
      ? int(last, -1) + 1 // resume after the last result the client has
      : int(c.req.query("from"), 0);
    const signal = c.req.query("requestSignal") === "0"
      ? undefined
      : c.req.raw.signal;
    const rerank: RunRecord["rerank"] = c.req.query("rerank") === "remote"
      ? "remote"
      : "local";
    return { n, from: Math.min(from, n), signal, rerank };
  }

  const app = new Hono();

  if (page !== undefined) app.get("/", (c) => c.html(page));
  // The dashboard element: one ES module, served beside the SSE routes.
  if (dashboard !== undefined) {
    app.get("/sluice-dashboard.js", (c) =>
      c.body(dashboard, 200, {
        "content-type": "text/javascript; charset=utf-8",
      }));
  }

  // A client that goes away reaches the handler in two ways: the runtime
  // cancels the response body, and aborts request.signal. Deno, Node and Bun
  // do both; Cloudflare Workers (with the enable_request_signal flag) may only
  // abort request.signal, dropping the request's timers. Both routes listen
  // to both.

  // sluice's own framing: new Response(toSSE(flow)). Cancelling the body
  // aborts the flow (every ctx.signal aborts); so does request.signal, as
  // toSSE's `signal` (it closes the stream without a final event).
  // `rerank=remote` without remote workers: refused before any run starts.
  const noRemote = () =>
    new Response(
      "This server has no remote re-rank workers (start it with `npm run demo:cluster`).\n",
      { status: 400 },
    );

  app.get("/api/to-sse", (c) => {
    const { n, from, signal, rerank } = params(c);
    if (rerank === "remote" && !remoteRerank) return noRemote();
    const dropAfter = int(c.req.query("dropAfter"), 0);
    const { run, flow } = start("to-sse", n, from, rerank);
    // A simulated network drop: once the K-th result is written, toSSE's
    // signal ends the stream without a final event (and aborts the flow);
    // the browser reconnects with Last-Event-ID and the next request resumes.
    const drop = new AbortController();
    let sent = 0;
    const body = toSSE(flow, {
      event: "result",
      id: (answer, index) => {
        if (++sent === dropAfter && answer.index < n - 1) {
          run.droppedAfter = sent;
          // After this result's frame is written (right after this call).
          queueMicrotask(() => drop.abort(dropReason()));
        }
        return String(index);
      },
      startIndex: from, // ids continue where the client left off
      retry: 1000,
      heartbeatMs,
      progressMs,
      progress: c.req.query("progress") === "full" ? "full" : "compact",
      signal: dropAfter === 0
        ? signal
        : signal
        ? AbortSignal.any([signal, drop.signal])
        : drop.signal,
    });
    return new Response(body, { headers: SSE_HEADERS });
  });

  // The same stream with Hono's streamSSE: its onAbort (the body was
  // cancelled) and request.signal abort the flow.
  app.get("/api/hono-sse", (c) => {
    const { n, from, signal, rerank } = params(c);
    if (rerank === "remote" && !remoteRerank) return noRemote();
    const dropAfter = int(c.req.query("dropAfter"), 0);
    const { run, flow } = start("hono-sse", n, from, rerank);
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => {
        void flow.abort(new DOMException("The client went away", "AbortError"));
      });
      const disconnected = () => void flow.abort(signal?.reason);
      signal?.addEventListener("abort", disconnected, { once: true });
      // Compact progress events, as toSSE's: a keyframe every 10th event,
      // else the figures that changed since the previous one.
      let previous: FlowStats | undefined;
      let count = 0;
      const progress = (e: CustomEvent<FlowStats>) => {
        const wire = toWire(
          e.detail,
          count++ % 10 === 0 ? undefined : previous,
        );
        previous = e.detail;
        void stream.writeSSE({ event: "progress", data: JSON.stringify(wire) });
      };
      flow.addEventListener("progress", progress);
      try {
        await stream.write("retry: 1000\n\n");
        let sent = 0;
        for await (const answer of flow) {
          await stream.writeSSE({
            event: "result",
            id: String(answer.index),
            data: JSON.stringify(answer),
          });
          // A simulated network drop: close without "done"; the browser
          // reconnects with Last-Event-ID and the next request resumes.
          if (++sent === dropAfter && answer.index < n - 1) {
            run.droppedAfter = sent;
            return void flow.abort(dropReason());
          }
        }
        await stream.writeSSE({
          event: "done",
          data: JSON.stringify(flow.stats()),
        });
      } catch (error) {
        if (!stream.aborted) {
          await stream.writeSSE({ event: "error", data: errorJSON(error) });
        }
      } finally {
        flow.removeEventListener("progress", progress);
        signal?.removeEventListener("abort", disconnected);
      }
    });
  });

  app.get("/api/config", (c) => c.json({ remoteRerank: !!remoteRerank }));

  app.get("/api/stats", (c) =>
    c.json({
      runs,
      timers: timers ? timers() : null,
    }));

  return app;
}
