/**
 * The SSE demo on Deno: `npm run demo`, or
 *
 * ```sh
 * deno run --unstable-no-legacy-abort --allow-net=127.0.0.1 --allow-read \
 *   --allow-env examples/hono/deno.ts
 * ```
 *
 * `--unstable-no-legacy-abort`: the app listens to `request.signal` to stop a
 * run when the client goes away. Without the flag, Deno 2.9 keeps its legacy
 * behaviour (the signal also aborts after a response completed) and prints a
 * warning the first time a handler reads it; with it, the signal aborts only
 * on a disconnect, which is what the app means.
 *
 * Serves the page and both SSE routes of `app.ts` on 127.0.0.1 (port `PORT`,
 * default 8000, or any free port when that one is taken) and prints the URL.
 * Needs no network. `LATENCY_SCALE` multiplies the simulated latencies;
 * `SLUICE_TRACK_TIMERS=1` turns on the timer count of `/api/stats` (tests).
 *
 * @module
 */
import { createApp } from "./app.ts";
import { trackTimers } from "./_timers.ts";

const env = (name: string) => Deno.env.get(name);
const app = createApp({
  page: await Deno.readTextFile(
    new URL("./static/index.html", import.meta.url),
  ),
  dashboard: await Deno.readTextFile(
    new URL("./static/sluice-dashboard.js", import.meta.url),
  ),
  log: console.log, // one line per run stopped early (a disconnect, …)
  latencyScale: Number(env("LATENCY_SCALE") ?? 1),
  timers: env("SLUICE_TRACK_TIMERS") === "1" ? trackTimers() : undefined,
});

const hostname = "127.0.0.1";
const port = Number(env("PORT") ?? 8000);
const onListen = ({ port }: { port: number }) =>
  console.log(`sluice SSE demo (Deno): http://${hostname}:${port}/`);
try {
  Deno.serve({ hostname, port, onListen }, app.fetch);
} catch (error) {
  if (!(error instanceof Deno.errors.AddrInUse)) throw error;
  console.log(`Port ${port} is taken; using a free one.`);
  Deno.serve({ hostname, port: 0, onListen }, app.fetch);
}
