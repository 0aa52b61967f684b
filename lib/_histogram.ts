// A bounded-memory latency histogram, in milliseconds.
//
// Values are counted in log-spaced buckets of ratio 1.04 between 1 µs and
// 1e7 ms: bucket 0 holds everything below 1 µs, bucket i >= 1 holds
// [1 µs × 1.04^(i-1), 1 µs × 1.04^i), and the last bucket is open-ended. The
// counts live in one preallocated Float64Array (590 buckets, about 4.7 kB), so
// memory is fixed whatever the count and `record()` allocates nothing.
//
// A percentile is the nearest-rank value: the bucket holding the
// ceil(q × count)-th smallest value, reported as its geometric midpoint clamped
// to the [min, max] seen (the two open-ended buckets report min and max). The
// midpoint is within a factor sqrt(1.04) of any value in its bucket: a
// relative error of at most 1.98 %. Count, sum (hence avg), min and max are
// kept exactly.

import type { LatencyStats } from "./stats.ts";

const MIN_MS = 1e-3;
const MAX_MS = 1e7;
const RATIO = 1.04;
const LOG_RATIO = Math.log(RATIO);
const BUCKETS = 2 + Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_RATIO);

/** A fixed-size log-bucket histogram of durations in milliseconds. */
export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  /** Number of buckets: the same for every histogram, whatever it records. */
  get bucketCount(): number {
    return this.#counts.length;
  }

  /** Counts one value; NaN and negative values count as 0. O(1), no allocation. */
  record(ms: number): void {
    if (!(ms >= 0)) ms = 0;
    const i = ms < MIN_MS ? 0 : Math.min(
      BUCKETS - 1,
      1 + Math.floor(Math.log(ms / MIN_MS) / LOG_RATIO),
    );
    this.#counts[i]++;
    this.#count++;
    this.#sum += ms;
    if (ms < this.#min) this.#min = ms;
    if (ms > this.#max) this.#max = ms;
  }

  /** The current figures; all zeros when nothing was recorded. */
  snapshot(): LatencyStats {
    const count = this.#count;
    if (count === 0) {
      return { count: 0, avg: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    }
    const rank50 = Math.max(1, Math.ceil(count * 0.5));
    const rank95 = Math.max(1, Math.ceil(count * 0.95));
    const rank99 = Math.max(1, Math.ceil(count * 0.99));
    let p50 = -1;
    let p95 = -1;
    let p99 = -1;
    let seen = 0;
    for (let i = 0; i < BUCKETS && p99 < 0; i++) {
      seen += this.#counts[i];
      if (p50 < 0 && seen >= rank50) p50 = this.#value(i);
      if (p95 < 0 && seen >= rank95) p95 = this.#value(i);
      if (seen >= rank99) p99 = this.#value(i);
    }
    return {
      count,
      avg: this.#sum / count,
      min: this.#min,
      p50,
      p95,
      p99,
      max: this.#max,
    };
  }

  /** The value reported for bucket `i`. */
  #value(i: number): number {
    if (i === 0) return this.#min;
    if (i === BUCKETS - 1) return this.#max;
    const mid = MIN_MS * Math.pow(RATIO, i - 0.5);
    return Math.min(this.#max, Math.max(this.#min, mid));
  }
}
