// A priority queue of entries keyed by (priority descending, seq ascending):
// higher priorities first, equal priorities first in, first out (the caller
// gives each entry an increasing `seq`). Allocation-light: the entries are the
// caller's own objects (no wrapper nodes), and each keeps its place (`pos`),
// so removing an entry from the middle (an aborted task) needs no search.
//
// Two parts:
// - a binary heap, ordered by the key;
// - a FIFO "lane" (a ring buffer) holding a run of entries of one priority
//   pushed in increasing `seq`: the common case (every task at the default
//   priority) costs O(1) per push and shift instead of O(log n) with cache
//   misses on every level (≈ 10× faster for 100,000 entries).
// An entry goes to the lane when the lane is empty, or when it has the lane's
// priority and a higher `seq` than the lane's last entry; anything else (other
// priorities, a retried task pushed again with its old `seq`) goes to the
// heap. `shift()` takes the better of the heap's top and the lane's head, so
// the order is exactly the key order.
//
// `pos`: `>= 0` index in the heap; `-1` not queued; `<= -2` in the lane at
// absolute position `-2 - pos`. A removed lane entry leaves a hole that
// `shift()` skips. Absolute positions only grow; `abs & mask` stays right for
// every power-of-two size up to 2^30 and positions up to 2^53.

/** What the queue needs of an entry. */
export interface QueueEntry {
  /** Higher runs first. */
  readonly priority: number;
  /** Tie-break among equal priorities: lower first (arrival order). */
  readonly seq: number;
  /** Where the entry is queued, `-1` when not queued; maintained by the queue. */
  pos: number;
}

/** A priority queue of {@linkcode QueueEntry} objects. */
export class PriorityQueue<T extends QueueEntry> {
  #heap: T[] = [];
  #lane: (T | undefined)[] = new Array(16);
  #mask = 15;
  /** Absolute position of the lane's head, and one past its tail. */
  #laneHead = 0;
  #laneTail = 0;
  /** Entries in the lane (holes not counted). */
  #laneSize = 0;
  #lanePriority = 0;
  #laneLastSeq = 0;

  /** Number of queued entries. */
  get size(): number {
    return this.#heap.length + this.#laneSize;
  }

  /** The entry `shift()` would return, or `undefined` when empty. */
  peek(): T | undefined {
    const top = this.#heap[0];
    if (this.#laneSize === 0) return top;
    const head = this.#laneFirst();
    return top !== undefined && before(top, head) ? top : head;
  }

  /** Adds `entry` (its `priority` and `seq` must not change while queued). */
  push(entry: T): void {
    if (this.#laneSize === 0) {
      this.#laneHead = this.#laneTail; // drop the holes, if any
      this.#lanePriority = entry.priority;
    } else if (
      entry.priority !== this.#lanePriority || entry.seq <= this.#laneLastSeq
    ) {
      const heap = this.#heap;
      heap.push(entry);
      this.#up(entry, heap.length - 1);
      return;
    }
    if (this.#laneTail - this.#laneHead === this.#lane.length) this.#grow();
    this.#lane[this.#laneTail & this.#mask] = entry;
    entry.pos = -2 - this.#laneTail;
    this.#laneTail++;
    this.#laneSize++;
    this.#laneLastSeq = entry.seq;
  }

  /** Removes and returns the first entry, or `undefined` when empty. */
  shift(): T | undefined {
    const heap = this.#heap;
    if (this.#laneSize !== 0) {
      const head = this.#laneFirst();
      if (heap.length === 0 || before(head, heap[0])) {
        this.#lane[this.#laneHead & this.#mask] = undefined;
        this.#laneHead++;
        this.#laneSize--;
        head.pos = -1;
        return head;
      }
    }
    const n = heap.length;
    if (n === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (n > 1) this.#down(last, 0);
    top.pos = -1;
    return top;
  }

  /**
   * Removes `entry` if it is queued here.
   *
   * @returns Whether it was queued.
   */
  remove(entry: T): boolean {
    const i = entry.pos;
    if (i <= -2) {
      const abs = -2 - i;
      const slot = abs & this.#mask;
      if (
        abs < this.#laneHead || abs >= this.#laneTail ||
        this.#lane[slot] !== entry
      ) return false;
      this.#lane[slot] = undefined;
      this.#laneSize--;
      entry.pos = -1;
      return true;
    }
    const heap = this.#heap;
    if (i < 0 || heap[i] !== entry) return false;
    const last = heap.pop()!;
    entry.pos = -1;
    if (last !== entry) {
      // `last` takes the hole, then moves whichever way its key says.
      if (i > 0 && before(last, heap[(i - 1) >> 1])) this.#up(last, i);
      else this.#down(last, i);
    }
    return true;
  }

  /** The lane's first entry, skipping holes (the lane must not be empty). */
  #laneFirst(): T {
    for (;;) {
      const entry = this.#lane[this.#laneHead & this.#mask];
      if (entry !== undefined) return entry;
      this.#laneHead++;
    }
  }

  #grow(): void {
    const old = this.#lane;
    const next: (T | undefined)[] = new Array(old.length * 2);
    const mask = next.length - 1;
    for (let abs = this.#laneHead; abs < this.#laneTail; abs++) {
      next[abs & mask] = old[abs & this.#mask];
    }
    this.#lane = next;
    this.#mask = mask;
  }

  /** Moves `entry` from index `i` towards the root to its place. */
  #up(entry: T, i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (!before(entry, p)) break;
      heap[i] = p;
      p.pos = i;
      i = parent;
    }
    heap[i] = entry;
    entry.pos = i;
  }

  /** Moves `entry` from index `i` towards the leaves to its place. */
  #down(entry: T, i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let c = heap[child];
      if (child + 1 < n && before(heap[child + 1], c)) c = heap[++child];
      if (!before(c, entry)) break;
      heap[i] = c;
      c.pos = i;
      i = child;
    }
    heap[i] = entry;
    entry.pos = i;
  }
}

/** Whether `a` comes out before `b`. */
function before(a: QueueEntry, b: QueueEntry): boolean {
  return a.priority > b.priority ||
    (a.priority === b.priority && a.seq < b.seq);
}
