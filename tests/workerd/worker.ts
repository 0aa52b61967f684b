// A Cloudflare Worker (module syntax) that runs sluice inside workerd: bundled
// with esbuild against the built npm package by tests/node/workerd.test.mjs
// and driven through Miniflare's dispatchFetch (no port, no nodejs_compat).
// Nothing happens at module scope: no timer, signal or stream is created
// before a request arrives (workerd forbids that, so loading this worker
// proves the library does not do it either).
import * as lib from "sluice";
import { batch, map, pipeline, SSE_HEADERS, toSSE } from "sluice";
import { cases, runCase } from "../cross/all.ts";

/** Resolves after `ms`, or at once when `signal` aborts; clears its timer. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * `/stream?n=&gapMs=`: items are ready in pairs, pair k after k * gapMs; they
 * go through batch({ maxSize: 3, maxWaitMs: gapMs / 4 }), so each pair is
 * flushed by the maxWaitMs timer, and each batch is written as one NDJSON
 * line as soon as it is out: the client sees the response grow. (Not
 * text/plain: workerd gzips that, and a gzipped body arrives in one piece.)
 */
function stream(url: URL): Response {
  const n = Number(url.searchParams.get("n") ?? 6);
  const gapMs = Number(url.searchParams.get("gapMs") ?? 100);
  const flow = pipeline(
    map(async (i: number, ctx) => {
      await sleep(Math.floor(i / 2) * gapMs, ctx.signal);
      return i;
    }, { concurrency: n }),
    batch<number>({ maxSize: 3, maxWaitMs: gapMs / 4 }),
  ).run(Array.from({ length: n }, (_, i) => i));
  const body = flow.readable
    .pipeThrough(
      new TransformStream<number[], string>({
        transform(items, controller) {
          controller.enqueue(`${JSON.stringify(items)}\n`);
        },
      }),
    )
    .pipeThrough(new TextEncoderStream());
  return new Response(body, {
    headers: { "content-type": "application/x-ndjson" },
  });
}

/** `/sse?n=&gapMs=`: result i is ready after i * gapMs, sent as one event. */
function sse(url: URL): Response {
  const n = Number(url.searchParams.get("n") ?? 3);
  const gapMs = Number(url.searchParams.get("gapMs") ?? 100);
  const flow = pipeline(map(async (i: number, ctx) => {
    await sleep(i * gapMs, ctx.signal);
    return { i };
  }, { concurrency: n })).run(Array.from({ length: n }, (_, i) => i));
  return new Response(toSSE(flow, { id: (_, i) => String(i) }), {
    headers: SSE_HEADERS,
  });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/cases") {
      return Response.json(cases.map((c) => c.name));
    }
    const match = url.pathname.match(/^\/case\/(\d+)$/);
    if (match) {
      const c = cases[Number(match[1])];
      if (!c) return new Response("no such case", { status: 404 });
      return Response.json(await runCase(c, lib));
    }
    if (url.pathname === "/stream") return stream(url);
    if (url.pathname === "/sse") return sse(url);
    return new Response("not found", { status: 404 });
  },
};
