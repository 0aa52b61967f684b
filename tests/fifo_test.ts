import assert from "node:assert/strict";
import { Fifo } from "../lib/_fifo.ts";

Deno.test("Fifo keeps first-in first-out order across growth while wrapped around", () => {
  const q = new Fifo<number>();
  const model: number[] = [];
  let next = 0;
  // Interleave pushes and shifts so the head wraps before the buffer grows.
  for (let round = 0; round < 200; round++) {
    const pushes = (round * 7) % 13 + 1;
    const shifts = (round * 5) % 11;
    for (let i = 0; i < pushes; i++) {
      q.push(next);
      model.push(next++);
    }
    for (let i = 0; i < shifts; i++) assert.equal(q.shift(), model.shift());
    assert.equal(q.size, model.length);
  }
  while (model.length > 0) assert.equal(q.shift(), model.shift());
  assert.equal(q.shift(), undefined);
  assert.equal(q.size, 0);
});

Deno.test("Fifo clear() drops every value", () => {
  const q = new Fifo<string>();
  for (let i = 0; i < 40; i++) q.push(String(i));
  q.clear();
  assert.equal(q.size, 0);
  assert.equal(q.shift(), undefined);
  q.push("a");
  assert.equal(q.shift(), "a");
});

Deno.test("Fifo unshift() puts a value at the front, across growth", () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 10; i++) q.push(i);
  for (let i = 0; i < 5; i++) q.shift();
  for (let i = 100; i < 120; i++) q.unshift(i); // wraps and grows
  const out: number[] = [];
  for (let v = q.shift(); v !== undefined; v = q.shift()) out.push(v);
  const expected = [];
  for (let i = 119; i >= 100; i--) expected.push(i);
  expected.push(5, 6, 7, 8, 9);
  assert.deepEqual(out, expected);
});
