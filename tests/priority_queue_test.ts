import assert from "node:assert/strict";
import { PriorityQueue, type QueueEntry } from "../lib/_priority_queue.ts";
import { prng } from "./_helpers.ts";

interface E extends QueueEntry {
  id: number;
}

function entry(priority: number, seq: number): E {
  return { priority, seq, pos: -1, id: seq };
}

/** Model order: priority descending, then seq ascending. */
function byKey(a: E, b: E): number {
  return b.priority - a.priority || a.seq - b.seq;
}

function drainAll(q: PriorityQueue<E>): number[] {
  const out: number[] = [];
  for (let e = q.shift(); e !== undefined; e = q.shift()) out.push(e.id);
  return out;
}

Deno.test("PriorityQueue shifts higher priorities first, equal priorities first in first out (AntFlow's test)", () => {
  const q = new PriorityQueue<E>();
  const names = ["low", "critical", "medium", "high"];
  [1, 10, 5, 8].forEach((p, i) => q.push(entry(p, i)));
  assert.deepEqual(drainAll(q).map((i) => names[i]), [
    "critical",
    "high",
    "medium",
    "low",
  ]);
});

Deno.test("PriorityQueue keeps arrival order among 10,000 equal priorities (the lane) and mixes in others", () => {
  const q = new PriorityQueue<E>();
  const model: E[] = [];
  for (let i = 0; i < 10_000; i++) {
    const e = entry(i % 997 === 0 ? 5 : 0, i);
    q.push(e);
    model.push(e);
  }
  assert.equal(q.size, 10_000);
  assert.deepEqual(drainAll(q), model.sort(byKey).map((e) => e.id));
  assert.equal(q.size, 0);
  assert.equal(q.peek(), undefined);
});

Deno.test("PriorityQueue matches a sorted model under random pushes, shifts and removals", () => {
  const random = prng(42);
  for (let round = 0; round < 30; round++) {
    const q = new PriorityQueue<E>();
    let model: E[] = [];
    let seq = 0;
    for (let step = 0; step < 600; step++) {
      const r = random();
      if (r < 0.5) {
        // Mostly one priority (the lane), sometimes others, sometimes an old
        // seq pushed again (a retried task keeps its place).
        const p = random() < 0.7 ? 0 : Math.floor(random() * 5) - 2;
        const s = random() < 0.1 && seq > 0 ? -seq : seq;
        const e = entry(p, s);
        e.id = seq++;
        q.push(e);
        model.push(e);
      } else if (r < 0.8) {
        model.sort(byKey);
        assert.equal(q.peek(), model[0]);
        const got = q.shift();
        assert.equal(got, model.shift());
        if (got) assert.equal(got.pos, -1);
      } else if (model.length > 0) {
        const victim = model[Math.floor(random() * model.length)];
        assert.equal(q.remove(victim), true);
        assert.equal(victim.pos, -1);
        assert.equal(q.remove(victim), false); // not queued any more
        model = model.filter((e) => e !== victim);
      }
      assert.equal(q.size, model.length);
    }
    assert.deepEqual(drainAll(q), model.sort(byKey).map((e) => e.id));
  }
});

Deno.test("PriorityQueue remove() of an entry not queued here returns false", () => {
  const q = new PriorityQueue<E>();
  const other = new PriorityQueue<E>();
  const a = entry(0, 0);
  const b = entry(0, 1);
  other.push(b);
  assert.equal(q.remove(a), false);
  q.push(a);
  assert.equal(q.remove(b), false);
  assert.equal(q.size, 1);
});

Deno.test("PriorityQueue removed lane entries leave holes that shift() skips, across growth", () => {
  const q = new PriorityQueue<E>();
  const es = Array.from({ length: 100 }, (_, i) => entry(0, i));
  for (const e of es.slice(0, 40)) q.push(e);
  for (let i = 0; i < 40; i += 2) assert.equal(q.remove(es[i]), true);
  for (const e of es.slice(40)) q.push(e); // grows with holes inside
  assert.equal(q.size, 80);
  const expected = es.filter((_, i) => i >= 40 || i % 2 === 1).map((e) => e.id);
  assert.deepEqual(drainAll(q), expected);
});
