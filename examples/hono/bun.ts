/**
 * The SSE demo on Bun: `bun examples/hono/bun.ts`. Same settings as
 * `deno.ts`: `PORT` (default 8000), `LATENCY_SCALE`, `SLUICE_TRACK_TIMERS=1`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { createApp } from "./app.ts";
import { trackTimers } from "./_timers.ts";

/** The part of Bun's API used here (so `deno check` needs no Bun types). */
declare const Bun: {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): { port: number };
};

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
const server = Bun.serve({
  hostname,
  port: Number(env.PORT ?? 8000),
  // Bun closes a connection idle for 10 s by default: an SSE stream may stay
  // quiet longer than that between heartbeats.
  idleTimeout: 0,
  fetch: app.fetch,
});
console.log(`sluice SSE demo (Bun): http://${hostname}:${server.port}/`);
