/**
 * The SSE demo on Node, with `@hono/node-server`. Node 20 cannot run
 * TypeScript, so bundle it first (the bundle is git-ignored; it finds
 * `static/index.html` beside it):
 *
 * ```sh
 * npx esbuild examples/hono/node.ts --bundle --platform=node --format=esm \
 *   --outfile=examples/hono/node.bundle.mjs && node examples/hono/node.bundle.mjs
 * ```
 *
 * (Node 22.18 and later strip types, so `node examples/hono/node.ts` may run
 * as is; only the bundle is tested here.)
 * Same settings as `deno.ts`: `PORT` (default 8000), `LATENCY_SCALE`,
 * `SLUICE_TRACK_TIMERS=1`.
 *
 * @module
 */
import { serve } from "@hono/node-server";
import { readFileSync } from "node:fs";
import process from "node:process";
import { createApp } from "./app.ts";
import { trackTimers } from "./_timers.ts";

const env = process.env;
const app = createApp({
  page: readFileSync(new URL("./static/index.html", import.meta.url), "utf8"),
  dashboard: readFileSync(
    new URL("./static/sluice-dashboard.js", import.meta.url),
    "utf8",
  ),
  log: console.log, // one line per run stopped early (a disconnect, …)
  latencyScale: Number(env.LATENCY_SCALE ?? 1),
  timers: env.SLUICE_TRACK_TIMERS === "1" ? trackTimers() : undefined,
});

const hostname = "127.0.0.1";
serve(
  { fetch: app.fetch, hostname, port: Number(env.PORT ?? 8000) },
  (info) =>
    console.log(`sluice SSE demo (Node): http://${hostname}:${info.port}/`),
);
