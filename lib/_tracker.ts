/**
 * Item tracking (`run(source, { track })`): each item's status, stage,
 * attempts, error and last transitions, for `flow.item(id)` and
 * `flow.items()`. Memory is bounded: live records are items in the run
 * (bounded by the read-ahead budget), and finished ones are kept up to
 * `keep`, oldest dropped first.
 *
 * @module
 */

import type { ItemRecord, ItemStatus, ItemTransition } from "./stats.ts";

/** Final statuses: the record leaves the live set (with its last part). */
const FINAL: ReadonlySet<ItemStatus> = new Set<ItemStatus>([
  "done",
  "skipped",
  "filtered",
  "cancelled",
]);

/** One item's record. */
class Rec {
  status: ItemStatus = "queued";
  stage = "";
  attempts = 0;
  error: unknown = undefined;
  failed = false;
  readonly history: ItemTransition[] = [];
  /** Tokens carrying this id (a flatten fan-out makes more). */
  parts = 1;
  /** Items absorbed into this one's batch: they follow it. */
  members: Rec[] | null = null;
  constructor(readonly id: unknown, readonly index: number) {}
}

/** The records of one run; the run calls it as items move. */
export class Tracker {
  readonly #historyLength: number;
  readonly #keep: number;
  readonly #live = new Map<unknown, Rec>();
  /** Finished records, oldest first (a Map keeps insertion order). */
  readonly #finished = new Map<unknown, Rec>();

  /**
   * @param historyLength Transitions kept per item.
   * @param keep Finished items kept.
   */
  constructor(historyLength: number, keep: number) {
    this.#historyLength = historyLength;
    this.#keep = keep;
  }

  /** An item entered `stage` (read, or passed on by the stage before). */
  queued(stage: string, id: unknown, index: number): void {
    let rec = this.#live.get(id);
    // Another item with the same id (a fan-out's elements keep their index).
    if (rec === undefined || rec.index !== index) {
      this.#finished.delete(id); // a repeated id: the new item replaces it
      rec = new Rec(id, index);
      this.#live.set(id, rec);
    }
    rec.attempts = 0;
    rec.failed = false;
    this.#move(rec, "queued", stage, undefined);
  }

  /** An item event of a stage: `started`, `retrying`, `failed`, `skipped`. */
  event(
    type: string,
    stage: string,
    id: unknown,
    attempt: number,
    error: unknown,
  ): void {
    const rec = this.#live.get(id);
    if (rec === undefined) return;
    if (type === "started") {
      rec.attempts = attempt;
      this.#move(rec, "running", stage, undefined);
    } else if (type === "retrying") {
      this.#move(rec, "retrying", stage, error);
    } else if (type === "failed") {
      rec.failed = true;
      this.#move(rec, "failed", stage, error);
    } else if (type === "skipped") {
      this.#move(rec, "skipped", stage, error);
    }
  }

  /** An item's result left the last stage. */
  done(id: unknown, stage: string): void {
    const rec = this.#live.get(id);
    if (rec !== undefined) this.#move(rec, "done", stage, undefined);
  }

  /** An item was filtered out (or flattened to nothing) at `stage`. */
  filtered(id: unknown, stage: string): void {
    const rec = this.#live.get(id);
    if (rec !== undefined) this.#move(rec, "filtered", stage, undefined);
  }

  /** A batch took `id` in: it follows the batch's first item from now on. */
  absorbed(id: unknown, carrier: unknown): void {
    const rec = this.#live.get(id);
    const host = this.#live.get(carrier);
    if (rec === undefined || host === undefined || rec === host) return;
    this.#live.delete(id);
    (host.members ??= []).push(rec);
  }

  /**
   * A flatten replaced `id`'s token: by `k` tokens of its own (a fan-out),
   * or by its batch's members again (`split`), which then go their own way.
   */
  flattened(id: unknown, k: number, split: boolean): void {
    const rec = this.#live.get(id);
    if (rec === undefined) return;
    if (!split) {
      rec.parts += k - 1;
      return;
    }
    const members = rec.members;
    rec.members = null;
    if (members === null) return;
    for (const m of members) {
      if (!this.#live.has(m.id)) this.#live.set(m.id, m);
    }
  }

  /** The run stopped: items still in it are cancelled (a failed one stays failed). */
  stopped(): void {
    for (const rec of [...this.#live.values()]) {
      rec.parts = 1;
      if (rec.failed) this.#finish(rec);
      else this.#move(rec, "cancelled", rec.stage, undefined);
    }
  }

  /** The record of `id`, as the public shape (a copy). */
  item(id: unknown): ItemRecord | undefined {
    const rec = this.#live.get(id) ?? this.#finished.get(id) ??
      this.#member(id);
    return rec && snapshot(rec);
  }

  /** Every record (live first, then finished), optionally of some statuses. */
  *items(statuses: ReadonlySet<ItemStatus> | undefined): Generator<ItemRecord> {
    for (const map of [this.#live, this.#finished]) {
      for (const rec of [...map.values()]) {
        if (statuses === undefined || statuses.has(rec.status)) {
          yield snapshot(rec);
        }
        if (map === this.#live) yield* members(rec, statuses);
      }
    }
  }

  /** A live batch member (not in the live map: its batch is). */
  #member(id: unknown): Rec | undefined {
    const find = (recs: Iterable<Rec>): Rec | undefined => {
      for (const rec of recs) {
        if (rec.members === null) continue;
        const m = rec.members.find((x) => x.id === id) ?? find(rec.members);
        if (m !== undefined) return m;
      }
      return undefined;
    };
    return find(this.#live.values());
  }

  /** Records a transition of `rec` and of the batch members following it. */
  #move(rec: Rec, status: ItemStatus, stage: string, error: unknown): void {
    if (FINAL.has(status)) {
      // A fan-out's element ending: the item ends with its last element.
      if (--rec.parts > 0) return;
      this.#record(rec, status, stage, error);
      this.#finish(rec);
      return;
    }
    this.#record(rec, status, stage, error);
  }

  #record(rec: Rec, status: ItemStatus, stage: string, error: unknown): void {
    if (rec.members !== null) {
      for (const m of rec.members) {
        m.attempts = rec.attempts;
        m.failed = rec.failed;
        this.#record(m, status, stage, error);
      }
    }
    rec.status = status;
    rec.stage = stage;
    if (error !== undefined) rec.error = error;
    const entry: ItemTransition = error === undefined
      ? { status, stage, at: Date.now() }
      : { status, stage, at: Date.now(), error };
    const history = rec.history;
    history.push(entry);
    if (history.length > this.#historyLength) history.shift();
  }

  /** `rec` (and its batch's members) leave the live set. */
  #finish(rec: Rec): void {
    if (this.#live.get(rec.id) === rec) this.#live.delete(rec.id);
    this.#keepFinished(rec);
    if (rec.members !== null) {
      for (const m of rec.members) this.#finish(m);
      rec.members = null;
    }
  }

  #keepFinished(rec: Rec): void {
    const finished = this.#finished;
    finished.delete(rec.id);
    finished.set(rec.id, rec);
    if (finished.size > this.#keep) {
      finished.delete(finished.keys().next().value);
    }
  }

  /** Records in the live set and kept finished (for tests of the bound). */
  get size(): { live: number; finished: number } {
    return { live: this.#live.size, finished: this.#finished.size };
  }
}

function snapshot(rec: Rec): ItemRecord {
  const out: {
    -readonly [K in keyof ItemRecord]: ItemRecord[K];
  } = {
    id: rec.id,
    index: rec.index,
    status: rec.status,
    stage: rec.stage,
    attempts: rec.attempts,
    history: rec.history.slice(),
  };
  if (rec.error !== undefined) out.error = rec.error;
  return out;
}

/** The batch members following `rec`, at every depth. */
function* members(
  rec: Rec,
  statuses: ReadonlySet<ItemStatus> | undefined,
): Generator<ItemRecord> {
  for (const m of rec.members ?? []) {
    if (statuses === undefined || statuses.has(m.status)) yield snapshot(m);
    yield* members(m, statuses);
  }
}
