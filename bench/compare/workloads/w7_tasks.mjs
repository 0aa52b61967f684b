// The W7 task module, the same for every library: its exported functions run
// inside the threads (sluice's ThreadPool, piscina and tinypool import it
// directly; poolifier-web-worker through w7_tasks_poolifier.mjs, which wraps
// it in a `ThreadWorker`). No imports: it loads alike in Node and Deno
// workers.

/** Iterations of `cpu`: ≈ 40 ms on the reference machine (2026-12, Xeon). */
export const CPU_ITERATIONS = 14_000_000;

/** The tiny task: one multiply-add, so the figure is the round trip. */
export function tiny(x) {
  return x * 2 + 1;
}

/**
 * The CPU task: `CPU_ITERATIONS` rounds of xorshift and a multiply from
 * `seed`, ≈ 40 ms of one core, deterministic (the answer is checked).
 */
export function cpu(seed) {
  let h = seed | 0 || 1;
  for (let i = 0; i < CPU_ITERATIONS; i++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    h = (Math.imul(h, 0x9e3779b1) + i) | 0;
  }
  return h >>> 0;
}

/** Spins until its thread is terminated (the abort case). */
export function spin() {
  for (;;) {
    // busy: no await, no timer, no message
  }
}

/**
 * Sums 256 bytes spread evenly over a buffer (the same work at every size)
 * and writes the sum into its first 4 bytes (what the caller checks);
 * returns the buffer itself. Every library's wrapper moves it back.
 */
export function stamp(buffer) {
  const bytes = new Uint8Array(buffer);
  const step = Math.max(1, Math.floor((bytes.length - 4) / 256));
  let sum = 0;
  for (let k = 0, i = 4; k < 256 && i < bytes.length; k++, i += step) {
    sum = (sum + bytes[i] * (k + 1)) | 0;
  }
  new DataView(buffer).setInt32(0, sum);
  return buffer;
}
