/**
 * The SSE demo as a Cloudflare Worker (module syntax): `npx wrangler dev`
 * in this folder (see `wrangler.toml`). The page is served from `static/` as
 * a static asset; the worker answers `/api/*`. Variables: `LATENCY_SCALE`,
 * `SLUICE_TRACK_TIMERS` (`"1"`: the timer count of `/api/stats`, for tests).
 *
 * @module
 */
import type { Hono } from "hono";
import { createApp } from "./app.ts";
import { trackTimers } from "./_timers.ts";

/** The worker's bindings (`[vars]` of `wrangler.toml`). */
export interface Env {
  LATENCY_SCALE?: string;
  SLUICE_TRACK_TIMERS?: string;
}

let app: Hono | undefined;

export default {
  fetch(
    request: Request,
    env: Env,
    ctx: unknown,
  ): Response | Promise<Response> {
    app ??= createApp({
      log: console.log, // one line per run stopped early (wrangler's log)
      latencyScale: Number(env.LATENCY_SCALE ?? 1),
      timers: env.SLUICE_TRACK_TIMERS === "1" ? trackTimers() : undefined,
    });
    return app.fetch(request, env, ctx as never);
  },
};
