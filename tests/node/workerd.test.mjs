// Cloudflare Workers stage: bundles tests/workerd/worker.ts with esbuild
// (against the built npm package) and runs it in workerd through Miniflare's
// dispatchFetch: every shared case inside the worker, then a streamed
// response read incrementally. No nodejs_compat flag: web standards only.
import { after, test } from "node:test";
import { bundleWorker, Miniflare } from "./_workerd.mjs";
import helpers from "./_cases.cjs";

const script = await bundleWorker("tests/workerd/worker.ts");
if (!script.includes("npm/esm/mod.js")) {
  throw new Error("the worker bundle did not take sluice from npm/esm/mod.js");
}

const mf = new Miniflare({
  modules: true,
  script,
  compatibilityDate: "2026-04-01",
});
after(() => mf.dispose());
const get = (path) => mf.dispatchFetch(`http://localhost${path}`);

const names = await (await get("/cases")).json();

names.forEach((name, i) => {
  test(`workerd: ${name}`, async () => {
    const res = await get(`/case/${i}`);
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    helpers.assertCaseResult(await res.json());
  });
});

test("workerd: a pipeline streams batches flushed by maxWaitMs as a Response body, read incrementally", async () => {
  const gapMs = 150;
  const res = await get(`/stream?n=6&gapMs=${gapMs}`);
  if (res.headers.get("content-type") !== "application/x-ndjson") {
    throw new Error(`content-type ${res.headers.get("content-type")}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const chunks = [];
  const t0 = Date.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push({ text: value, at: Date.now() - t0 });
  }
  const text = chunks.map((c) => c.text).join("");
  if (text !== "[0,1]\n[2,3]\n[4,5]\n") throw new Error(`body ${JSON.stringify(text)}`);
  // Incremental: the first batch arrived on its own, well before the last.
  if (chunks.length < 2 || chunks[0].text.includes("[4,5]")) {
    throw new Error(`the body came in one piece: ${JSON.stringify(chunks)}`);
  }
  const last = chunks.at(-1);
  if (last.at - chunks[0].at < gapMs) {
    throw new Error(`chunks not spread over time: ${JSON.stringify(chunks)}`);
  }
});

test("workerd: toSSE() events reach the client one by one, then the done event", async () => {
  const gapMs = 150;
  const res = await get(`/sse?n=3&gapMs=${gapMs}`);
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
    throw new Error(`content-type ${res.headers.get("content-type")}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const chunks = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  const text = chunks.join("");
  const events = text.split("\n\n").filter(Boolean);
  const data = events.filter((e) => e.startsWith("id: ")).map((e) => e.split("\n"));
  const expected = [0, 1, 2].map((i) => [`id: ${i}`, `data: {"i":${i}}`]);
  if (JSON.stringify(data) !== JSON.stringify(expected)) throw new Error(`events ${JSON.stringify(text)}`);
  if (!events.at(-1).startsWith("event: done\ndata: ")) throw new Error(`no done event: ${JSON.stringify(text)}`);
  if (!chunks[0].startsWith("id: 0\n") || chunks[0].includes("id: 1")) {
    throw new Error(`the first event did not arrive on its own: ${JSON.stringify(chunks)}`);
  }
});
