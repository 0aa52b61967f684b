/**
 * Bytes per second of `progress` events, before and after the compact shape:
 * the Hono demo's pipeline (examples/hono/app.ts: retrieve → batch → rerank →
 * flatten → enrich) over 1,000 queries, streamed by `toSSE(flow, {
 * progressMs: 200 })` once with `progress: "full"` (the whole `flow.stats()`
 * per event, as before) and once with `progress: "compact"` (a keyframe every
 * 10th event, deltas between). Both runs go at the same time, in process
 * (`app.fetch`, no socket).
 *
 * Run: `deno run -A bench/progress_bytes.ts [--n=1000] [--scale=1]`.
 * `--scale` multiplies the simulated latencies (1: the demo's, a run of about
 * 100 s; 0.1 runs ten times faster, with more change between two events).
 *
 * @module
 */
import { createApp } from "../examples/hono/app.ts";

const arg = (name: string, fallback: number): number => {
  const found = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split("=")[1]) : fallback;
};
const n = arg("n", 1000);
const scale = arg("scale", 1);
const progressMs = 200;

const app = createApp({ latencyScale: scale, progressMs });

interface Measure {
  shape: string;
  seconds: number;
  events: number;
  bytes: number;
  keyframes: number;
  keyframeBytes: number;
  results: number;
}

async function measure(shape: "full" | "compact"): Promise<Measure> {
  const t0 = performance.now();
  const res = await app.fetch(
    new Request(`http://x/api/to-sse?n=${n}&progress=${shape}`),
  );
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const encoder = new TextEncoder();
  const m: Measure = {
    shape,
    seconds: 0,
    events: 0,
    bytes: 0,
    keyframes: 0,
    keyframeBytes: 0,
    results: 0,
  };
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end + 2);
      buffer = buffer.slice(end + 2);
      if (block.startsWith("event: progress\n")) {
        const size = encoder.encode(block).length;
        m.events++;
        m.bytes += size;
        if (shape === "full" || block.includes('data: {"s":')) {
          m.keyframes++;
          m.keyframeBytes += size;
        }
      } else if (block.startsWith("event: result\n")) m.results++;
    }
  }
  m.seconds = (performance.now() - t0) / 1000;
  return m;
}

console.log(
  `progress events of a ${n}-item demo run (latency scale ${scale}, every ${progressMs} ms):`,
);
const [full, compact] = await Promise.all([
  measure("full"),
  measure("compact"),
]);
for (const m of [full, compact]) {
  const deltas = m.events - m.keyframes;
  console.log(
    `${m.shape.padEnd(8)} ${m.results} results in ${m.seconds.toFixed(1)} s: ` +
      `${m.events} progress events, ${m.bytes} B, ` +
      `${Math.round(m.bytes / m.seconds)} B/s, ` +
      `${Math.round(m.bytes / m.events)} B/event` +
      (m.shape === "compact"
        ? ` (keyframes ${Math.round(m.keyframeBytes / m.keyframes)} B, ` +
          `deltas ${Math.round((m.bytes - m.keyframeBytes) / deltas)} B)`
        : ""),
  );
}
console.log(
  `compact / full: ${
    (compact.bytes / compact.seconds / (full.bytes / full.seconds) * 100)
      .toFixed(1)
  } % of the bytes per second`,
);
