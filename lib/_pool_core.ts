// The running machinery of a Pool: its slots, queue, workers, attempts,
// backoffs, rate-limit wait, cancel and waiters. `Pool` validates arguments
// and delegates here; this class trusts what it is given.
import { abortError } from "./errors.ts";
import { Deadline, retryDelay, SlotSignals } from "./_attempt.ts";
import type { RetryPolicy } from "./retry.ts";
import type { TaskContext } from "./types.ts";
import { PriorityQueue } from "./_priority_queue.ts";
import type { RateLimiter } from "./_rate_limiter.ts";
import {
  type AnyFn,
  apply,
  BACKOFF,
  DONE,
  Job,
  MAP,
  MapFailure,
  type MapGroup,
  QUEUED,
  RUN,
  RUNNING,
  SUBMIT,
} from "./_pool_job.ts";
import type { MapHost } from "./_pool_map.ts";

const OPEN = 0;
const DRAINING = 1;
const CANCELLED = 2;

/**
 * The state and workers of one `Pool` (see its doc comment for the
 * behaviour). Internal: arguments are validated by `Pool`.
 */
export class PoolCore {
  readonly concurrency: number;
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #limiter: RateLimiter | undefined;
  /** No retry, timeout or rate limit: the fast path. */
  readonly #plain: boolean;
  readonly #queue = new PriorityQueue<Job>();
  /**
   * One `ctx.signal` per slot, all aborted on cancel: a signal has one call's
   * listeners at most. A running map() task aborted alone aborts its slot's
   * signal, renewed before the slot's next task.
   */
  readonly #slots = new SlotSignals();
  readonly #signal: AbortSignal | undefined;
  #seq = 0;
  /** Slots in use (running tasks). */
  #active = 0;
  /** Tasks whose outcome is not settled yet. */
  #unsettled = 0;
  /** Freed slot indexes, reused so workerIds stay in `0..concurrency-1`. */
  readonly #freeSlots: number[] = [];
  #slotsMade = 0;
  /** Tasks waiting out a retry backoff. */
  readonly #backingOff = new Set<Job>();
  #paused = false;
  #state = OPEN;
  /** Aborts the pending rate-limit wait (set while one is pending). */
  #rateWait: AbortController | undefined;
  /** onIdle() and onSizeLessThan() waiters. */
  #idleWaiters: (() => void)[] = [];
  #sizeWaiters: { limit: number; resolve: () => void }[] = [];
  #waiters = 0;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #finished = false;
  /** What a map() run uses of the pool. */
  readonly mapHost: MapHost = {
    submit: (fn, item, index, priority, signal, group) =>
      this.#submitMap(fn as AnyFn, item, index, priority, signal, group),
    closedError: () => this.#state === OPEN ? undefined : this.#closedError(),
  };

  constructor(
    concurrency: number,
    retry: RetryPolicy | undefined,
    timeoutMs: number | undefined,
    limiter: RateLimiter | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.concurrency = concurrency;
    this.#retry = retry;
    this.#timeoutMs = timeoutMs;
    this.#limiter = limiter;
    this.#plain = retry === undefined && timeoutMs === undefined &&
      limiter === undefined;
    this.#signal = signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#cancel(signal.reason);
      else signal.addEventListener("abort", this.#onSignal, { once: true });
    }
  }

  // The getters behind Pool's (documented there).
  get active(): number {
    return this.#active;
  }

  get pending(): number {
    return this.#queue.size + this.#backingOff.size;
  }

  get closed(): boolean {
    return this.#state !== OPEN;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** `Pool.submit()`: `fn(...args)` at priority `0`. */
  submit(fn: AnyFn, args: unknown[]): Promise<unknown> {
    if (this.#state !== OPEN) return Promise.reject(this.#closedError());
    const job = new Job(
      SUBMIT,
      fn,
      args,
      undefined,
      0,
      this.#seq++,
      0,
      undefined,
    );
    const promise = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    this.#add(job);
    return promise;
  }

  /** `Pool.run()`: `fn(ctx)`, dropped or aborted when `signal` aborts. */
  run(
    fn: AnyFn,
    priority: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (this.#state !== OPEN) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    const job = new Job(
      RUN,
      fn,
      undefined,
      undefined,
      priority,
      this.#seq,
      this.#seq++,
      signal,
    );
    const promise = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    if (signal !== undefined) {
      job.onAbort = () => this.#abortJob(job, signal.reason);
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    this.#add(job);
    return promise;
  }

  /** One item of a map(): a task whose signal is the map call's `ctx.signal`. */
  #submitMap(
    fn: AnyFn,
    item: unknown,
    index: number,
    priority: number,
    signal: AbortSignal,
    group: MapGroup,
  ): Promise<unknown> {
    if (this.#state !== OPEN) {
      return Promise.reject(new MapFailure(this.#closedError()));
    }
    if (signal.aborted) return Promise.reject(new MapFailure(signal.reason));
    if (index > group.failedAt) {
      return Promise.reject(
        new MapFailure(abortError("An earlier item failed")),
      );
    }
    const job = new Job(
      MAP,
      fn,
      undefined,
      item,
      priority,
      this.#seq++,
      index,
      signal,
    );
    const promise = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    job.group = group;
    // One listener per slot signal of the map's run (a slot has one call in
    // flight), not one per task: a listener costs more than the task.
    const current = group.current;
    if (!current.has(signal)) {
      signal.addEventListener("abort", () => {
        const running = current.get(signal);
        if (running !== undefined) this.#abortJob(running, signal.reason);
      }, { once: true });
    }
    current.set(signal, job);
    this.#add(job);
    return promise;
  }

  /** `Pool.onIdle()`. */
  onIdle(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#waiters++;
    });
  }

  /** `Pool.onSizeLessThan()`, `limit` validated. */
  onSizeLessThan(limit: number): Promise<void> {
    if (this.pending < limit) return Promise.resolve();
    return new Promise((resolve) => {
      this.#sizeWaiters.push({ limit, resolve });
      this.#waiters++;
    });
  }

  /** `Pool.pause()`: a closed pool drains, so it stays unpaused. */
  pause(): void {
    if (this.#state === OPEN) this.#paused = true;
  }

  /** `Pool.resume()`. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#dispatch();
  }

  /** `Pool.close()`: drains, or cancels with `cancelPending`. */
  close(cancelPending: boolean): Promise<void> {
    if (cancelPending) {
      this.#cancel(abortError("The pool was closed with cancelPending"));
    } else if (this.#state === OPEN) {
      this.#state = DRAINING;
      this.#paused = false;
      this.#dispatch();
    }
    this.#maybeFinish();
    if (this.#finished) return Promise.resolve();
    this.#closed ??= new Promise((resolve) => (this.#resolveClosed = resolve));
    return this.#closed;
  }

  // ---- scheduling --------------------------------------------------------

  /** Takes a new task: starts it at once if a slot is free, else queues it. */
  #add(job: Job): void {
    this.#unsettled++;
    if (
      this.#queue.size === 0 && !this.#paused &&
      this.#active < this.concurrency &&
      (this.#limiter === undefined || this.#limiter.tryAcquire())
    ) {
      this.#start(job);
    } else {
      this.#enqueue(job);
      this.#dispatch();
    }
  }

  #enqueue(job: Job): void {
    job.state = QUEUED;
    this.#queue.push(job);
  }

  /** A job left the queue (to start, or removed). */
  #dequeued(): void {
    if (this.#waiters !== 0) this.#check();
  }

  /** Starts a job in a new worker on a free slot (one must be free). */
  #start(job: Job): void {
    const slot = this.#freeSlots.length > 0
      ? this.#freeSlots.pop()!
      : this.#slotsMade++;
    this.#active++;
    void this.#worker(job, slot);
  }

  /** Starts queued jobs while slots are free. */
  #dispatch(): void {
    while (this.#active < this.concurrency) {
      const job = this.#take();
      if (job === undefined) return;
      this.#dequeued();
      this.#start(job);
    }
  }

  /** The next job to start, if one may start now (a slot being free). */
  #take(): Job | undefined {
    if (this.#paused || this.#queue.size === 0) return undefined;
    if (this.#limiter !== undefined && !this.#limiter.tryAcquire()) {
      this.#waitForRate();
      return undefined;
    }
    return this.#queue.shift();
  }

  /**
   * Waits (once for the whole pool) until the rate limit allows a start, then
   * starts the first queued job. The start is recorded when granted; if
   * nothing may start then (paused, or the job was aborted), it is wasted
   * rather than recorded late, so the window is never exceeded.
   */
  #waitForRate(): void {
    if (this.#rateWait !== undefined) return;
    const wait = this.#rateWait = new AbortController();
    this.#limiter!.acquire(wait.signal).then(() => {
      this.#rateWait = undefined;
      if (
        !this.#paused && this.#queue.size > 0 &&
        this.#active < this.concurrency
      ) {
        const job = this.#queue.shift()!;
        this.#dequeued();
        this.#start(job);
      }
      this.#dispatch();
    }, () => {
      // Closed, or the queue emptied (no timer is left behind).
      if (this.#rateWait === wait) this.#rateWait = undefined;
    });
  }

  /**
   * A worker: runs `job`, then the next queued job while there is one it may
   * start, keeping its slot; frees the slot when there is none. Never rejects.
   */
  async #worker(job: Job, slot: number): Promise<void> {
    let signal = this.#slots.get(slot);
    for (;;) {
      job.state = RUNNING;
      job.workerId = slot;
      if (signal.aborted) signal = this.#slots.renew(slot);
      if (job.group !== undefined && job.index > job.group.failedAt) {
        // An earlier item of its map failed: the map ends there.
        this.#settle(job, false, abortError("An earlier item failed"));
      } else if (
        this.#plain && (job.kind !== RUN || job.signal === undefined)
      ) {
        job.attempt = 1;
        try {
          const value = job.kind === SUBMIT
            ? await apply(job.fn, job.args!)
            : job.kind === MAP
            ? await job.fn(job.item, this.#ctx(job, signal))
            : await job.fn(this.#ctx(job, signal));
          this.#settle(job, true, value);
        } catch (error) {
          this.#settle(job, false, error);
        }
      } else {
        // Settled (or sent to back off) only now, in the same tick as the
        // slot is reused or freed: whoever awaits the task sees it free.
        const delay = await this.#attempt(job, signal);
        if (delay < 0) this.#settle(job, job.ok, job.value);
        else this.#backoff(job, delay);
      }
      const next = this.#take();
      if (next === undefined) {
        this.#active--;
        this.#freeSlots.push(slot);
        this.#maybeFinish();
        return;
      }
      job = next;
      this.#dequeued();
    }
  }

  /**
   * One attempt of a job on the slow path: with its own signal, a timeout or
   * retries. Resolves with `-1` when the job is done (its outcome in
   * `job.ok` and `job.value`), or with the delay before its retry.
   */
  async #attempt(job: Job, slot: AbortSignal): Promise<number> {
    job.attempt++;
    const timeoutMs = this.#timeoutMs;
    let signal = slot;
    let deadline: Deadline | undefined;
    if (
      timeoutMs !== undefined || (job.kind === RUN && job.signal !== undefined)
    ) {
      deadline = job.deadline = new Deadline(slot, timeoutMs, "Pool task");
      signal = deadline.signal;
      if (job.signal?.aborted) deadline.abort(job.signal.reason);
    }
    let ok = false;
    let value: unknown;
    try {
      value = job.kind === SUBMIT
        ? await apply(job.fn, job.args!)
        : job.kind === MAP
        ? await job.fn(job.item, this.#ctx(job, signal))
        : await job.fn(this.#ctx(job, signal));
      ok = true;
    } catch (error) {
      value = error;
    }
    if (deadline !== undefined) {
      job.deadline = undefined;
      if (deadline.end()) {
        ok = false;
        value = deadline.reason;
      }
    }
    job.ok = ok;
    job.value = value;
    if (ok || this.#state === CANCELLED || job.signal?.aborted) return -1;
    const delay = retryDelay(
      this.#retry,
      job.attempt,
      value,
      this.#ctx(job, signal),
    );
    if (delay === undefined) return -1;
    if (typeof delay === "number") return delay;
    job.value = delay.error; // retryIf (or the jitter's random()) threw
    return -1;
  }

  /**
   * Waits out a retry backoff holding no slot, then puts the job back into
   * the queue with its priority and original sequence number: ahead of the
   * equal-priority tasks that came after it.
   */
  #backoff(job: Job, delay: number): void {
    if (this.#state === CANCELLED || job.signal?.aborted) {
      return this.#settle(job, job.ok, job.value); // cancelled meanwhile
    }
    job.value = undefined;
    job.state = BACKOFF;
    this.#backingOff.add(job);
    job.timer = setTimeout(() => {
      job.timer = undefined;
      this.#backingOff.delete(job);
      this.#enqueue(job);
      this.#dispatch();
    }, delay);
  }

  #ctx(job: Job, signal: AbortSignal): TaskContext {
    return {
      signal,
      workerId: job.workerId,
      itemId: job.index,
      index: job.index,
      attempt: job.attempt,
      stage: "pool",
      context: undefined,
    };
  }

  /** Records a job's outcome and settles its promise. */
  #settle(job: Job, ok: boolean, value: unknown): void {
    job.state = DONE;
    if (job.onAbort !== undefined) {
      job.signal!.removeEventListener("abort", job.onAbort);
      job.onAbort = undefined;
    }
    this.#unsettled--;
    job.value = undefined;
    if (ok) job.resolve!(value);
    else if (job.kind !== MAP) job.reject!(value);
    else {
      const group = job.group!;
      if (job.index < group.failedAt) group.failedAt = job.index;
      job.reject!(new MapFailure(value));
    }
    if (this.#waiters !== 0) this.#check();
  }

  /**
   * Aborts one job: a waiting one is dropped and rejects with `reason`; a
   * running one sees its attempt's signal abort (if it has its own).
   */
  #abortJob(job: Job, reason: unknown): void {
    switch (job.state) {
      case QUEUED:
        this.#queue.remove(job);
        this.#dequeued();
        this.#settle(job, false, reason);
        if (this.#queue.size === 0 && this.#rateWait !== undefined) {
          this.#rateWait.abort();
          this.#rateWait = undefined;
        }
        break;
      case BACKOFF:
        clearTimeout(job.timer);
        job.timer = undefined;
        this.#backingOff.delete(job);
        this.#settle(job, false, reason);
        break;
      case RUNNING:
        if (job.deadline !== undefined) job.deadline.abort(reason);
        else if (job.kind === MAP) this.#slots.abortSlot(job.workerId, reason);
        return;
      default:
        return;
    }
    this.#maybeFinish();
  }

  /** close({ cancelPending: true }) and the pool's signal. */
  #cancel(reason: unknown): void {
    if (this.#state === CANCELLED) return;
    this.#state = CANCELLED;
    this.#paused = false;
    this.#slots.abort(reason); // and every attempt's own signal with them
    // One job at a time, each taken out of the backoff set or the queue just
    // before it settles, never from a snapshot: settling one can settle
    // others (a failed map job aborts its map's later jobs), which are then
    // no longer there to be settled a second time.
    for (const job of this.#backingOff) this.#abortJob(job, reason);
    for (let job; (job = this.#queue.peek()) !== undefined;) {
      this.#abortJob(job, reason);
    }
    this.#limiter?.close(reason);
    this.#maybeFinish();
  }

  #onSignal = (): void => this.#cancel(this.#signal!.reason);

  /** Resolves close() once closed and every task has settled. */
  #maybeFinish(): void {
    if (this.#finished || this.#state === OPEN || this.#unsettled !== 0) {
      return;
    }
    this.#finished = true;
    this.#limiter?.close(this.#closedError());
    this.#signal?.removeEventListener("abort", this.#onSignal);
    this.#resolveClosed?.();
  }

  /** Resolves the onIdle() and onSizeLessThan() waiters now due. */
  #check(): void {
    if (this.#unsettled === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      this.#waiters -= waiters.length;
      for (const resolve of waiters) resolve();
    }
    if (this.#sizeWaiters.length > 0) {
      const pending = this.pending;
      const keep: { limit: number; resolve: () => void }[] = [];
      for (const w of this.#sizeWaiters) {
        if (pending < w.limit) {
          this.#waiters--;
          w.resolve();
        } else keep.push(w);
      }
      this.#sizeWaiters = keep;
    }
  }

  #closedError(): TypeError {
    return new TypeError(
      `The pool is closed (${this.#active} running, ${this.pending} waiting): it takes no new task after close()`,
    );
  }
}
