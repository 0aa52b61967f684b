// Tasks for the ThreadPool tests: plain JavaScript, so every runtime runs it.
// Each export is one task, called with one argument.

/** CPU work: `rounds` of a string hash (about 1 ms per 100,000 rounds). */
export function hash({ text, rounds = 1000 }) {
  let h = 2166136261;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619) >>> 0;
    }
  }
  return `${text}:${h.toString(16)}`;
}

/** The argument back, after `ms` of waiting (not CPU). */
export async function echo({ value, ms = 0 }) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return value;
}

/** Never returns and never yields: only terminating the thread stops it. */
export function spin() {
  for (;;) {
    // busy
  }
}

/** Throws an error of its own class, with a code. */
export function fail(message) {
  class QuotaError extends Error {
    constructor(m) {
      super(m);
      this.name = "QuotaError";
      this.code = "E_QUOTA";
    }
  }
  throw new QuotaError(message);
}

/** Ends its own thread: `self.close()` in a Web Worker that has it, else `process.exit(3)`. */
export function quit() {
  if (typeof globalThis.self?.close === "function") self.close();
  else process.exit(3);
  return new Promise(() => {});
}

/** An error thrown outside the call (from a timer): the thread dies. */
export function crash() {
  setTimeout(() => {
    throw new Error("uncaught in the thread");
  }, 0);
  return new Promise(() => {});
}

/** The buffer's byte length, and the buffer itself back, moved. */
export async function roundTrip(buffer) {
  const { transfer } = await import(TRANSFER_FROM);
  return transfer({ bytes: buffer.byteLength, buffer }, [buffer]);
}

const TRANSFER_FROM = new URL("../../threads.ts", import.meta.url).href;

/**
 * Kills its thread on its first `failures` calls (`how`: "quit" or "crash",
 * as those tasks do), counted in a shared `Int32Array` (memory every thread
 * sees), then returns the call's number.
 */
export function flaky({ counter, failures = 1, how = "quit" }) {
  const n = Atomics.add(counter, 0, 1) + 1;
  if (n <= failures) return how === "crash" ? crash() : quit();
  return n;
}

/** Throws a value that is not an error. */
export function throwValue(value) {
  throw value;
}

/** The buffer's byte length and first byte, the buffer itself kept. */
export function inspect(buffer) {
  return { bytes: buffer.byteLength, first: new Uint8Array(buffer)[0] };
}

/** `hash` of every input: a `Batcher`'s batch function. */
export function hashAll(inputs) {
  return inputs.map(hash);
}

let lastFresh;

/**
 * A new buffer of `size` bytes of `fill`, moved back with `transfer()`'s
 * marker written by hand (no import); the thread keeps a reference to it.
 */
export function fresh({ size, fill }) {
  const buffer = new Uint8Array(size).fill(fill).buffer;
  lastFresh = buffer;
  return {
    [Symbol.for("sluice.transfer")]: true,
    value: buffer,
    transfer: [buffer],
  };
}

/** The byte length, in this thread, of the buffer `fresh` last moved out. */
export function freshBytesLeft() {
  return lastFresh === undefined ? -1 : lastFresh.byteLength;
}

/** The id of the process running the call (`isolation: "process"` tests). */
export function pid() {
  return globalThis.Deno?.pid ?? globalThis.process?.pid;
}

/** Writes to stdout every way it can, then returns `value` (process mode). */
export function chatty(value) {
  console.log("chatty: console.log");
  console.info("chatty: console.info");
  console.table([{ chatty: 1 }]);
  const bytes = new TextEncoder().encode("chatty: stdout\n");
  if (globalThis.Deno !== undefined) globalThis.Deno.stdout.writeSync(bytes);
  else globalThis.process?.stdout.write(bytes);
  return value;
}

/** Allocates until its thread (or process) runs out of memory. */
export function hog() {
  const keep = [];
  for (;;) keep.push(new Array(1e6).fill(1.5));
}
