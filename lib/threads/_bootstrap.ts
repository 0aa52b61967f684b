/**
 * The code a thread runs, as source text: it imports the task module and
 * answers calls. Kept as a string (run from a `blob:` URL, or with
 * `worker_threads`' `eval`), so bundlers need no worker file of their own.
 *
 * @module
 */

/**
 * The protocol. To a thread: `{ id, name, arg }` (with the call's transfer
 * list). From a thread: `{ id, ok: true, value }` (with the task's transfer
 * list), `{ id, ok: false, error, load? }` (an `ErrorRecord`; `load`: the
 * module did not load), or `{ dead: message }` just before the thread ends
 * itself (`self.close()`, `process.exit()`). This part (the module import and
 * `answer`) is shared by threads and child processes (`_process.ts`); each
 * defines `MODULE_URL` and `post(message, transferList)`.
 */
export const ANSWER_SOURCE = String.raw`
const TRANSFER = Symbol.for("sluice.transfer");
let mod;
let loadError;
const ready = import(MODULE_URL).then((m) => { mod = m; }, (e) => { loadError = e; });
const record = (e) => {
  if (e !== null && typeof e === "object" && typeof e.message === "string") {
    const out = { name: String(e.name ?? "Error"), message: e.message, stack: e.stack === undefined ? undefined : String(e.stack) };
    if (e.code !== undefined) { try { out.code = structuredClone(e.code); } catch {} }
    return out;
  }
  try { return { value: structuredClone(e) }; } catch { return { value: String(e) }; }
};
// One call at a time, in arrival order: the pool may send the next call
// while this one runs, so the thread never waits for a round trip.
let chain = Promise.resolve();
// Shared with the pool: [0] the call started here, [1] a call aborted in the inbox.
let gate;
const enqueue = (data) => {
  if (data !== null && typeof data === "object" && data.gate !== undefined) { gate = data.gate; return; }
  chain = chain.then(() => answer(data)).catch(() => {});
};
async function answer(data) {
  const { id, name, arg } = data;
  await ready;
  if (gate !== undefined) {
    const key = (id & 0x3fffffff) + 1;
    Atomics.store(gate, 0, key);
    if (Atomics.load(gate, 1) === key) {
      Atomics.store(gate, 0, -key);
      return post({ id, ok: false, skipped: true });
    }
  }
  if (loadError !== undefined) return post({ id, ok: false, load: true, error: record(loadError) });
  const fn = mod[name];
  if (typeof fn !== "function") {
    return post({ id, ok: false, error: { name: "TypeError", message: "The task module " + MODULE_URL + " exports no function " + JSON.stringify(name) } });
  }
  let value;
  try {
    value = await fn(arg);
  } catch (e) {
    return post({ id, ok: false, error: record(e) });
  }
  let list = [];
  if (value !== null && typeof value === "object" && value[TRANSFER] === true) {
    list = value.transfer;
    value = value.value;
  }
  try {
    post({ id, ok: true, value }, list);
  } catch (e) {
    post({ id, ok: false, error: record(e) });
  }
}
`;

/** A module Web Worker's code (Deno, Bun, browsers). */
export function webWorkerSource(moduleURL: string): string {
  return `const MODULE_URL = ${JSON.stringify(moduleURL)};
const post = (message, list) => self.postMessage(message, list ?? []);
${ANSWER_SOURCE}
if (typeof self.close === "function") {
  const close = self.close.bind(self);
  self.close = () => { post({ dead: "the task called self.close()" }); close(); };
}
const proc = globalThis.process;
if (typeof proc?.exit === "function") {
  const exit = proc.exit.bind(proc);
  proc.exit = (code) => { post({ dead: "the task called process.exit(" + (code ?? "") + ")" }); exit(code); };
}
self.onmessage = (event) => { enqueue(event.data); };
`;
}

/** A `node:worker_threads` thread's code (CommonJS, run with `eval`). */
export function nodeWorkerSource(moduleURL: string): string {
  return `const MODULE_URL = ${JSON.stringify(moduleURL)};
const { parentPort } = require("node:worker_threads");
const post = (message, list) => parentPort.postMessage(message, list ?? []);
${ANSWER_SOURCE}
const exit = process.exit.bind(process);
process.exit = (code) => { post({ dead: "the task called process.exit(" + (code ?? "") + ")" }); exit(code); };
parentPort.on("message", enqueue);
`;
}
