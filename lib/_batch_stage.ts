/**
 * A batch stage at run time: the forming batch, its timer, and (input order)
 * its cursor into the order list.
 *
 * @module
 */

import type { Cursor } from "./_order_list.ts";
import { type RunHost, RUNNING } from "./_run.ts";
import { callFreeStageStats, QUEUED, type StagePart } from "./_run_stats.ts";
import { sampled, Token, UNIT } from "./_token.ts";
import type { BatchSpec } from "./stage.ts";
import type { StageStats } from "./stats.ts";
import type { SourceReader } from "./_source.ts";

/**
 * A batch stage of one run. The first token of a forming batch is its
 * _carrier_: it stays in the run and the later members are absorbed into it
 * (their weight added to its own). On flush (full, timer, end of input) the
 * carrier moves on with the array as its value.
 */
export class BatchStage implements StagePart, Cursor {
  readonly kind = "batch";
  readonly name: string;
  readonly #run: RunHost;
  /** Its position in the pipeline. */
  readonly #at: number;
  /** Items per batch at most. */
  readonly maxSize: number;
  readonly #minSize: number;
  readonly #maxWaitMs: number | undefined;
  /** A flatten comes later: the forming batch keeps its members' tokens. */
  readonly #track: boolean;
  /** The forming batch; its first token (the carrier) stays in the run. */
  #items: unknown[] = [];
  carrier: Token | null = null;
  #members: Token[] | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** maxWaitMs passed while the batch was below minSize. */
  #due = false;
  /** See {@linkcode Cursor}. */
  cursor: Token | null = null;
  completed = 0;
  readonly recentMs = 0;

  constructor(
    run: RunHost,
    name: string,
    at: number,
    spec: BatchSpec,
    track: boolean,
  ) {
    this.#run = run;
    this.name = name;
    this.#at = at;
    this.maxSize = spec.maxSize;
    this.#minSize = spec.minSize;
    this.#maxWaitMs = spec.maxWaitMs;
    this.#track = track;
  }

  /** Room left in the forming batch. */
  get room(): number {
    return this.maxSize - this.#items.length;
  }

  /** A token reached this stage. */
  enter(t: Token): void {
    if (this.#run.order !== null) this.feed();
    else this.#add(t);
  }

  /** Input order: takes the tokens that reached this stage, in list order. */
  feed(): void {
    const at = this.#at;
    for (let c = this.cursor; c !== null && c.stage === at; c = this.cursor) {
      this.cursor = c.next;
      this.#add(c);
      if (this.#run.state !== RUNNING) return;
    }
  }

  #add(t: Token): void {
    const carrier = this.carrier;
    if (carrier === null) {
      this.carrier = t;
      if (this.#track) this.#members = [asMember(t)];
      this.#items.push(t.value);
      if (this.#maxWaitMs !== undefined) {
        this.#timer = setTimeout(() => this.#onTimer(), this.#maxWaitMs);
      }
    } else {
      this.#items.push(t.value);
      this.#members?.push(t);
      carrier.weight += t.weight;
      this.#run.absorb(t, carrier);
    }
    this.flushIfReady();
  }

  /**
   * First stage only, while a batch is forming: a source item (counted held
   * by the run) joins it straight, with no token of its own (its weight goes
   * to the carrier), after its "queued".
   */
  admit(value: unknown, index: number, id: unknown): void {
    const run = this.#run;
    if (run.stats.listening & QUEUED) {
      run.stats.queued(this.name, id, index);
      if (run.state !== RUNNING) return; // a listener stopped the run
    }
    this.carrier!.weight += UNIT;
    this.#members?.push(this.#member(value, index, id));
    this.#items.push(value);
    this.flushIfReady();
  }

  /**
   * First stage only, while a batch is forming, from a source in memory
   * whose ids are indices and whose items need no "queued" event each:
   * copies up to `max` items into it at once (counted read). Returns how
   * many (0: it cannot); the caller adds their weight, then calls
   * `flushIfReady()`.
   */
  fillFrom(reader: SourceReader<unknown>, max: number): number {
    const run = this.#run;
    const stats = run.stats;
    if (
      this.carrier === null || reader.fill === undefined ||
      run.config.id !== undefined || (stats.listening & QUEUED) !== 0
    ) {
      return 0;
    }
    const k = this.#fill(reader, Math.min(this.room, max), stats.itemsIn);
    stats.itemsIn += k;
    return k;
  }

  /** Copies up to `max` items (ids are indices, from `firstIndex`). */
  #fill(
    reader: SourceReader<unknown>,
    max: number,
    firstIndex: number,
  ): number {
    const items = this.#items;
    const k = reader.fill!(items, max);
    if (k === 0) return 0;
    const members = this.#members;
    if (members !== null) {
      const from = items.length - k;
      for (let j = 0; j < k; j++) {
        const index = firstIndex + j;
        members.push(this.#member(items[from + j], index, index));
      }
    }
    this.carrier!.weight += k * UNIT;
    return k;
  }

  /** Flushes the forming batch if it is full, or due and big enough. */
  flushIfReady(): void {
    const n = this.#items.length;
    if (n >= this.maxSize || (this.#due && n >= this.#minSize)) this.flush();
  }

  /** A token for a member of a first-stage batch (it had none). */
  #member(value: unknown, index: number, id: unknown): Token {
    const t = new Token(value, index, id, UNIT);
    if (this.#run.stats.timeAll || sampled(index)) {
      t.times = { bornAt: performance.now(), enteredAt: 0 };
    }
    return t;
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#run.state !== RUNNING) return;
    if (this.#items.length >= this.#minSize) {
      this.flush();
      this.#run.pump();
    } else this.#due = true;
  }

  /** Emits the forming batch (full, due, or the end of input). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    const carrier = this.carrier!;
    carrier.value = this.#items;
    carrier.members = this.#members;
    this.#items = [];
    this.carrier = null;
    this.#members = null;
    this.completed++;
    this.#run.forward(carrier);
  }

  /** The run stopped: the forming batch is dropped with the rest. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#items = [];
    this.carrier = null;
    this.#members = null;
    this.#due = false;
  }

  snapshot(elapsedMs: number): StageStats {
    return callFreeStageStats(
      this.name,
      "batch",
      this.completed,
      this.#items.length,
      elapsedMs,
    );
  }
}

/**
 * A batch's first member: the carrier itself, or (when it is a batch with
 * members of its own) a stand-in that keeps them for a second flatten.
 */
function asMember(t: Token): Token {
  if (t.members === null) return t;
  const m = new Token(undefined, t.index, t.id, t.weight);
  m.members = t.members;
  t.members = null;
  return m;
}
