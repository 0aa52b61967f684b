// The wait-for-room line of a Pool with `maxQueued`: tasks submitted while
// the queue is full, held outside the pool in arrival order until the queue
// has room. A held task is not taken yet: it gets its id when it enters, no
// event fires for it before, and no counter of `stats()` but `waiting`
// counts it.
import { QueueFullError } from "./errors.ts";
import { HELD, type Job, MAP, MapFailure } from "./_pool_job.ts";

/** What a held task rejects with: a map() task's reason boxed. */
function reasonOf(job: Job, reason: unknown): unknown {
  return job.kind === MAP ? new MapFailure(reason) : reason;
}

/**
 * The bound on a pool's queue and the line of tasks waiting for room in it.
 * Internal: `PoolCore` decides when a task enters.
 */
export class Room {
  /** In arrival order; a Set so that an aborted task leaves in O(1). */
  readonly #held = new Set<Job>();
  /** Called when a held task's signal aborted (it left the line). */
  readonly #left: () => void;

  /**
   * @param maxQueued Tasks in the queue at most, for new ones to enter.
   * @param rejects `onFull: "reject"`: a `submit()`/`run()` finding the
   * queue full is refused rather than held.
   * @param left Called after a held task left the line, aborted.
   */
  constructor(
    readonly maxQueued: number,
    readonly rejects: boolean,
    left: () => void,
  ) {
    this.#left = left;
  }

  /** Tasks waiting for room. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * Whether a new task must wait for room (or be refused): some task waits
   * already (it goes first), or the queue holds `maxQueued` tasks.
   */
  full(queued: number): boolean {
    return this.#held.size !== 0 || queued >= this.maxQueued;
  }

  /**
   * Puts `job` (not taken yet: its promise made, no id) at the end of the
   * line; its signal can take it out (its promise then rejects with the
   * reason).
   */
  hold(job: Job): void {
    job.state = HELD;
    const signal = job.signal;
    if (signal !== undefined) {
      job.onAbort = () => {
        if (!this.#held.delete(job)) return;
        signal.removeEventListener("abort", job.onAbort!);
        job.onAbort = undefined;
        job.reject!(reasonOf(job, signal.reason));
        this.#left();
      };
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    this.#held.add(job);
  }

  /** Takes the first task out of the line (its listener removed), if any. */
  shift(): Job | undefined {
    for (const job of this.#held) {
      this.#held.delete(job);
      if (job.onAbort !== undefined) {
        job.signal!.removeEventListener("abort", job.onAbort);
        job.onAbort = undefined;
      }
      return job;
    }
    return undefined;
  }

  /**
   * Rejects every task in the line with `reason` (the pool was cancelled).
   *
   * @returns How many there were.
   */
  turnAway(reason: unknown): number {
    let n = 0;
    for (let job; (job = this.shift()) !== undefined; n++) {
      job.reject!(reasonOf(job, reason));
    }
    return n;
  }

  /** The error of a task refused (`onFull: "reject"`), with the state. */
  error(active: number, queued: number): QueueFullError {
    return new QueueFullError(this.maxQueued, {
      message:
        `The pool's queue is full (maxQueued: ${this.maxQueued}; ${active} running, ${queued} queued): the task was not taken`,
    });
  }
}
