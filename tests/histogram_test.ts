import assert from "node:assert/strict";
import { Histogram } from "../lib/_histogram.ts";
import { prng } from "./_helpers.ts";

/** The nearest-rank `q` quantile of `sorted`. */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(sorted.length * q)) - 1];
}

function assertWithin(actual: number, expected: number, relative: number) {
  const error = Math.abs(actual - expected) / expected;
  assert.ok(
    error <= relative,
    `${actual} is not within ${relative * 100} % of ${expected}`,
  );
}

function checkPercentiles(samples: number[]) {
  const h = new Histogram();
  for (const v of samples) h.record(v);
  const sorted = samples.toSorted((a, b) => a - b);
  const s = h.snapshot();
  assertWithin(s.p50, exact(sorted, 0.5), 0.02);
  assertWithin(s.p95, exact(sorted, 0.95), 0.02);
  assertWithin(s.p99, exact(sorted, 0.99), 0.02);
  assert.equal(s.min, sorted[0]);
  assert.equal(s.max, sorted[sorted.length - 1]);
  assert.equal(s.count, samples.length);
}

Deno.test("Histogram snapshot() is all zeros when empty", () => {
  assert.deepEqual(new Histogram().snapshot(), {
    count: 0,
    avg: 0,
    min: 0,
    p50: 0,
    p95: 0,
    p99: 0,
    max: 0,
  });
});

Deno.test("Histogram avg and max are exact", () => {
  const h = new Histogram();
  for (const v of [1, 2, 3, 4, 10.5]) h.record(v);
  const s = h.snapshot();
  assert.equal(s.count, 5);
  assert.equal(s.avg, 20.5 / 5);
  assert.equal(s.max, 10.5);
});

Deno.test("Histogram p50, p95 and p99 are within 2 % on a uniform distribution", () => {
  const random = prng(1);
  checkPercentiles(Array.from({ length: 20_000 }, () => 5 + random() * 95));
});

Deno.test("Histogram p50, p95 and p99 are within 2 % on a heavy-tailed distribution", () => {
  const random = prng(2);
  // Pareto with alpha 1.2 and scale 2 ms, plus a 0.5 % tail of 1000x outliers.
  const samples = Array.from({ length: 20_000 }, () => {
    const v = 2 / Math.pow(1 - random(), 1 / 1.2);
    return random() < 0.005 ? v * 1000 : v;
  });
  checkPercentiles(samples);
});

Deno.test("Histogram p50, p95 and p99 are within 2 % for every small sample size", () => {
  const random = prng(3);
  for (let n = 1; n <= 50; n++) {
    checkPercentiles(Array.from({ length: n }, () => 0.01 + random() * 1000));
  }
});

Deno.test("Histogram reports a single value exactly", () => {
  const h = new Histogram();
  h.record(42.7);
  assert.deepEqual(h.snapshot(), {
    count: 1,
    avg: 42.7,
    min: 42.7,
    p50: 42.7,
    p95: 42.7,
    p99: 42.7,
    max: 42.7,
  });
});

Deno.test("Histogram handles values below 1 µs and above 1e7 ms", () => {
  const small = new Histogram();
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    small.record(0.0001);
    sum += 0.0001;
  }
  assert.deepEqual(small.snapshot(), {
    count: 10,
    avg: sum / 10,
    min: 0.0001,
    p50: 0.0001,
    p95: 0.0001,
    p99: 0.0001,
    max: 0.0001,
  });

  const mixed = new Histogram();
  for (const v of [0.0001, 0.0002, 0.0005, 0.0009]) mixed.record(v);
  const s = mixed.snapshot();
  assert.ok(s.p50 >= 0.0001 && s.p50 <= 0.0009);
  assert.ok(s.p95 >= 0.0001 && s.p95 <= 0.0009);

  checkPercentiles([2e6, 3e6, 5e6, 7e6, 9.9e6]);

  // Beyond 1e7 ms the last bucket is open-ended: max stays exact and the
  // percentiles are clamped to what was seen.
  const huge = new Histogram();
  for (const v of [5e6, 1e9, 1e12]) huge.record(v);
  const h = huge.snapshot();
  assert.ok(h.p50 >= 1e7 && h.p50 <= 1e12);
  assert.equal(h.p95, 1e12);
  assert.equal(h.max, 1e12);
  assert.equal(h.avg, (5e6 + 1e9 + 1e12) / 3);
});

Deno.test("Histogram counts NaN and negative values as 0", () => {
  const h = new Histogram();
  h.record(NaN);
  h.record(-5);
  h.record(-Infinity);
  assert.deepEqual(h.snapshot(), {
    count: 3,
    avg: 0,
    min: 0,
    p50: 0,
    p95: 0,
    p99: 0,
    max: 0,
  });
  h.record(3);
  assert.equal(h.snapshot().avg, 0.75);
  assert.equal(h.snapshot().p50, 0);
});

Deno.test("Histogram memory stays fixed after a million values", () => {
  const h = new Histogram();
  const buckets = h.bucketCount;
  assert.equal(new Histogram().bucketCount, buckets);
  assert.ok(buckets < 1000);
  const random = prng(4);
  for (let i = 0; i < 1_000_000; i++) h.record(random() * 1e4);
  assert.equal(h.bucketCount, buckets);
  const s = h.snapshot();
  assert.equal(s.count, 1_000_000);
  assertWithin(s.p50, 5000, 0.03);
  assertWithin(s.p95, 9500, 0.03);
});
