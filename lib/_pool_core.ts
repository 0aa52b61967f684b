// The running machinery of a Pool: its slots, queue, workers, attempts,
// backoffs, live limit, cancel and waiters. `Pool` validates arguments and
// delegates here; this class trusts what it is given. What the pool reports
// (events, timing, stats, waiters' promises) is its `PoolMonitor`'s; the rate
// limit's wait is its `RateGate`'s; a map()'s tasks are made by its
// `PoolMapTasks`.
import { abortError } from "./errors.ts";
import { SlotSignals } from "./_attempt.ts";
import { attempt, FINAL, retryAfter } from "./_pool_attempt.ts";
import {
  AdaptiveLimit,
  type AdaptiveOptions,
  isOverload,
} from "./_adaptive_limit.ts";
import type { RetryPolicy } from "./retry.ts";
import type { PoolStats } from "./pool_stats.ts";
import { PriorityQueue } from "./_priority_queue.ts";
import type { RateLimiter } from "./_rate_limiter.ts";
import { RateGate } from "./_pool_rate_gate.ts";
import {
  type AnyFn,
  BACKOFF,
  call,
  DONE,
  Job,
  MAP,
  MapFailure,
  promiseOf,
  QUEUED,
  RUN,
  RUNNING,
  SUBMIT,
  type Tuning,
} from "./_pool_job.ts";
import { Room } from "./_pool_room.ts";
import { PoolMapTasks } from "./_pool_map_tasks.ts";
import {
  CANCELLED_EV,
  COMPLETED_EV,
  FAILED_EV,
  PoolMonitor,
  SAMPLE,
} from "./_pool_monitor.ts";

const OPEN = 0;
const DRAINING = 1;
const CANCELLED = 2;

/**
 * The state and workers of one `Pool` (see its doc comment for the
 * behaviour). Internal: arguments are validated by `Pool`.
 */
export class PoolCore {
  #concurrency: number;
  /** The adaptive limit, when `concurrency` was `{ adaptive }`. */
  readonly #adaptive: AdaptiveLimit | undefined;
  /** Events, timing and stats. */
  readonly #monitor: PoolMonitor;
  // Counted here, where the plain path bumps them cheapest.
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  readonly #retry: RetryPolicy | undefined;
  readonly #timeoutMs: number | undefined;
  /** The rate limit of starts, if any. */
  readonly #gate: RateGate | undefined;
  /** No retry, timeout or rate limit: the fast path. */
  readonly #plain: boolean;
  readonly #queue = new PriorityQueue<Job>();
  /** The `maxQueued` bound and who waits for room (none: no bound). */
  readonly #room: Room | undefined;
  /** Tasks are entering from the room (not re-entered). */
  #admitting = false;
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
  /**
   * onIdle() and onSizeLessThan() waiters (kept by the monitor), and tasks
   * waiting for room: nonzero when a queue change may settle one of them.
   */
  #waiters = 0;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #finished = false;
  /** What a map() run uses of the pool. */
  readonly mapHost: PoolMapTasks = new PoolMapTasks({
    closedError: () => this.#state === OPEN ? undefined : this.#closedError(),
    concurrency: () => this.#concurrency,
    accept: (job, promise) => this.#accept(job, promise),
    abort: (job, reason) => this.#abortJob(job, reason),
  });

  constructor(
    concurrency: number | AdaptiveOptions,
    retry: RetryPolicy | undefined,
    timeoutMs: number | undefined,
    limiter: RateLimiter | undefined,
    maxQueued: number,
    rejects: boolean,
    signal: AbortSignal | undefined,
    target: EventTarget,
  ) {
    if (typeof concurrency === "number") {
      this.#concurrency = concurrency;
    } else {
      this.#adaptive = new AdaptiveLimit(concurrency);
      this.#concurrency = this.#adaptive.limit;
    }
    this.#retry = retry;
    this.#timeoutMs = timeoutMs;
    if (limiter !== undefined) {
      this.#gate = new RateGate(limiter, () => this.#dispatch());
    }
    if (maxQueued !== Infinity) {
      // A task waiting for room was aborted.
      this.#room = new Room(maxQueued, rejects, () => {
        this.#waiters--;
        this.#maybeFinish();
      });
    }
    this.#plain = retry === undefined && timeoutMs === undefined &&
      limiter === undefined;
    this.#monitor = new PoolMonitor(target, !this.#plain, this.#adaptive);
    this.#signal = signal;
    if (signal !== undefined) {
      if (signal.aborted) this.#cancel(signal.reason);
      else signal.addEventListener("abort", this.#onSignal, { once: true });
    }
  }

  // The getters behind Pool's (documented there).
  get concurrency(): number {
    return this.#concurrency;
  }

  /** `pool.concurrency = n`, `n` validated. */
  setConcurrency(n: number): void {
    if (this.#adaptive !== undefined) {
      throw new TypeError(
        `'concurrency' of an adaptive pool is set by the pool (now ${this.#concurrency}, from ${this.#adaptive.min} to ${this.#adaptive.max}): cannot set it to ${n}`,
      );
    }
    if (this.#state === CANCELLED || this.#finished) {
      throw new TypeError(
        `'concurrency' cannot change once the pool is ${
          this.#state === CANCELLED ? "cancelled" : "closed and drained"
        }: cannot set it to ${n}`,
      );
    }
    this.#setLimit(n, "set");
  }

  /** Someone listens to `type`: from now on it is dispatched. */
  listen(type: string): void {
    this.#monitor.listen(type);
  }

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
      this.#seq,
      0,
      undefined,
    );
    const promise = promiseOf(job);
    if (this.#room?.full(this.#queue.size)) return this.#hold(job, promise);
    this.#seq++;
    this.#add(job);
    return promise;
  }

  /**
   * `Pool.run()`: `fn(ctx)`, dropped or aborted when `signal` aborts; with
   * its own retry and timeout when `tuning` is given.
   */
  run(
    fn: AnyFn,
    priority: number,
    signal: AbortSignal | undefined,
    tuning: Tuning | undefined,
  ): Promise<unknown> {
    if (this.#state !== OPEN) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    const job = new Job(
      RUN,
      fn,
      undefined,
      tuning,
      priority,
      this.#seq,
      this.#seq,
      signal,
    );
    const promise = promiseOf(job);
    if (this.#room?.full(this.#queue.size)) return this.#hold(job, promise);
    this.#seq++;
    this.#enter(job);
    return promise;
  }

  /** Takes a map() task (made by `mapHost`), or holds it for room. */
  #accept(job: Job, promise: Promise<unknown>): Promise<unknown> {
    if (this.#room?.full(this.#queue.size)) return this.#hold(job, promise);
    job.seq = this.#seq++;
    this.#enter(job);
    return promise;
  }

  /** Takes a RUN or MAP job: listens to its signal, then adds it. */
  #enter(job: Job): void {
    const signal = job.signal;
    if (signal === undefined) return this.#add(job);
    if (job.kind === RUN) {
      job.onAbort = () => this.#abortJob(job, signal.reason);
      signal.addEventListener("abort", job.onAbort, { once: true });
    } else this.mapHost.listen(job);
    this.#add(job);
  }

  /**
   * A task arriving while the queue is full: refused (`onFull: "reject"`,
   * except a map()'s own tasks, whose map waits anyway), or held for room.
   */
  #hold(job: Job, promise: Promise<unknown>): Promise<unknown> {
    const room = this.#room!;
    if (room.rejects && job.kind !== MAP) {
      return Promise.reject(room.error(this.#active, this.#queue.size));
    }
    this.#waiters++;
    room.hold(job);
    return promise;
  }

  /** Lets tasks waiting for room enter, in arrival order, while there is room. */
  #admit(room: Room): void {
    if (this.#admitting) return; // a task entering started others
    this.#admitting = true;
    try {
      while (
        room.size !== 0 && this.#queue.size < room.maxQueued &&
        this.#state !== CANCELLED
      ) {
        this.#waiters--;
        const job = room.shift()!;
        job.seq = this.#seq++;
        if (job.kind === RUN) job.index = job.seq;
        this.#enter(job);
      }
    } finally {
      this.#admitting = false;
    }
  }

  /** `Pool.onIdle()`. */
  onIdle(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve();
    this.#waiters++;
    return this.#monitor.onIdle();
  }

  /** `Pool.onSizeLessThan()`, `limit` validated. */
  onSizeLessThan(limit: number): Promise<void> {
    if (this.pending < limit) return Promise.resolve();
    this.#waiters++;
    return this.#monitor.onSizeLessThan(limit);
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
    const monitor = this.#monitor;
    if (monitor.watch !== 0 || (job.seq & SAMPLE) === 0) monitor.added(job);
    if (
      this.#queue.size === 0 && !this.#paused &&
      this.#active < this.#concurrency &&
      (this.#gate === undefined || this.#gate.tryAcquire())
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
      : this.#newSlot();
    this.#active++;
    void this.#worker(job, slot);
  }

  /** A slot used for the first time. */
  #newSlot(): number {
    const slot = this.#slotsMade++;
    this.#monitor.newSlot(slot);
    return slot;
  }

  /** Starts queued jobs while slots are free. */
  #dispatch(): void {
    while (this.#active < this.#concurrency) {
      const job = this.#take();
      if (job === undefined) return;
      this.#start(job); // before a task waiting for room may enter
      this.#dequeued();
    }
  }

  /** The next job to start, if one may start now (a slot being free). */
  #take(): Job | undefined {
    if (this.#paused || this.#queue.size === 0) return undefined;
    if (this.#gate !== undefined && !this.#gate.take()) return undefined;
    return this.#queue.shift();
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
        this.#drop(job, abortError("An earlier item failed"));
      } else if (
        this.#plain &&
        (job.kind !== RUN ||
          (job.signal === undefined && job.item === undefined))
      ) {
        // Reported only when watched or sampled (one task in 128, by id).
        const watched = this.#monitor.watch !== 0 || (job.seq & SAMPLE) === 0;
        if (watched) this.#monitor.began(job, false);
        else job.attempt = 1;
        let ok = true;
        let value: unknown;
        try {
          value = await call(job, signal);
        } catch (error) {
          ok = false;
          value = error;
        }
        if (watched) this.#ended(job, ok, value, false);
        this.#settle(job, ok, value);
      } else {
        // Settled (or sent to back off) only now, in the same tick as the
        // slot is reused or freed: whoever awaits the task sees it free.
        const delay = await this.#attempt(job, signal);
        if (delay < 0) this.#settle(job, job.ok, job.value);
        else this.#backoff(job, delay);
      }
      // Over the limit (it was lowered): the slot is given up.
      const next = this.#active > this.#concurrency ? undefined : this.#take();
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
   * One attempt of a job on the slow path, with the pool's retry and timeout
   * or the run() call's own (its `Tuning`). Resolves with `-1` when the job
   * is done (its outcome in `job.ok` and `job.value`), or with the delay
   * before its retry.
   */
  async #attempt(job: Job, slot: AbortSignal): Promise<number> {
    this.#monitor.began(job, true); // the slow path times every attempt
    const tuning = job.kind === RUN
      ? job.item as Tuning | undefined
      : undefined;
    const signal = await attempt(
      job,
      slot,
      tuning === undefined ? this.#timeoutMs : tuning.timeoutMs,
    );
    const error = job.value;
    if (job.ok || this.#state === CANCELLED || job.signal?.aborted) {
      this.#ended(job, job.ok, error, false);
      return -1;
    }
    const retry = tuning === undefined ? this.#retry : tuning.retry;
    const delay = retryAfter(job, signal, retry, this.#adaptive !== undefined);
    this.#ended(job, false, error, delay !== FINAL);
    if (delay < 0) return -1;
    this.#monitor.retrying(job, error, delay);
    return delay;
  }

  /**
   * An attempt that `PoolMonitor.began` saw ended: its timing, and the
   * adaptive limit's sample.
   *
   * @param retryable Whether `retryIf` calls the error retryable.
   */
  #ended(job: Job, ok: boolean, value: unknown, retryable: boolean): void {
    const ms = this.#monitor.ended(job, ok);
    const adaptive = this.#adaptive;
    if (adaptive !== undefined && this.#state !== CANCELLED) {
      const overloaded = !ok && (retryable || isOverload(value));
      if (adaptive.sample(ms, overloaded, this.#active - 1)) {
        this.#setLimit(adaptive.limit, "adaptive");
      }
    }
  }

  /** Changes the limit; raising it starts queued tasks at once. */
  #setLimit(to: number, reason: "set" | "adaptive"): void {
    const from = this.#concurrency;
    if (to === from) return;
    this.#concurrency = to;
    this.mapHost.changed(to);
    this.#monitor.concurrency(from, to, reason);
    if (to > from) this.#dispatch();
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

  /** Records the outcome of a job that ran and settles its promise. */
  #settle(job: Job, ok: boolean, value: unknown): void {
    if (ok) this.#completed++;
    else this.#failed++;
    this.#finish(job, ok, value, ok ? COMPLETED_EV : FAILED_EV);
  }

  /** Settles a job dropped from the queue or a backoff (or never started). */
  #drop(job: Job, reason: unknown): void {
    this.#cancelled++;
    this.#finish(job, false, reason, CANCELLED_EV);
  }

  /** Settles a job's promise; `event` says which event ends it. */
  #finish(job: Job, ok: boolean, value: unknown, event: number): void {
    job.state = DONE;
    if (job.onAbort !== undefined) {
      job.signal!.removeEventListener("abort", job.onAbort);
      job.onAbort = undefined;
    }
    this.#unsettled--;
    job.value = undefined;
    const monitor = this.#monitor;
    if (monitor.watch !== 0) {
      monitor.finished(job, value, event, this.#unsettled === 0);
    }
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
        this.#drop(job, reason);
        if (this.#queue.size === 0) this.#gate?.idle();
        break;
      case BACKOFF:
        clearTimeout(job.timer);
        job.timer = undefined;
        this.#backingOff.delete(job);
        this.#drop(job, reason);
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
    // First: a task waiting for room would otherwise enter as the queue empties.
    if (this.#room !== undefined) this.#waiters -= this.#room.turnAway(reason);
    this.#slots.abort(reason); // and every attempt's own signal with them
    // One job at a time, each taken out of the backoff set or the queue just
    // before it settles, never from a snapshot: settling one can settle
    // others (a failed map job aborts its map's later jobs), which are then
    // no longer there to be settled a second time.
    for (const job of this.#backingOff) this.#abortJob(job, reason);
    for (let job; (job = this.#queue.peek()) !== undefined;) {
      this.#abortJob(job, reason);
    }
    this.#gate?.close(reason);
    this.#maybeFinish();
  }

  #onSignal = (): void => this.#cancel(this.#signal!.reason);

  /**
   * Fires `idle` once when the pool has become idle; resolves close() once
   * closed and every task has settled.
   */
  #maybeFinish(): void {
    if (this.#unsettled === 0 && this.#monitor.idleDue) {
      this.#monitor.idle(this.#completed, this.#failed);
    }
    if (
      this.#finished || this.#state === OPEN || this.#unsettled !== 0 ||
      (this.#room !== undefined && this.#room.size !== 0)
    ) {
      return;
    }
    this.#finished = true;
    this.#gate?.close(this.#closedError());
    this.#signal?.removeEventListener("abort", this.#onSignal);
    this.#resolveClosed?.();
  }

  /**
   * Lets tasks waiting for room enter if there is room now; resolves the
   * onIdle() and onSizeLessThan() waiters now due.
   */
  #check(): void {
    const room = this.#room;
    if (room !== undefined && room.size !== 0) this.#admit(room);
    this.#waiters -= this.#monitor.check(this.#unsettled, this.pending);
  }

  /** `Pool.stats()`. */
  stats(): PoolStats {
    return this.#monitor.stats({
      concurrency: this.#concurrency,
      submitted: this.#seq,
      unsettled: this.#unsettled,
      queued: this.#queue.size,
      backingOff: this.#backingOff.size,
      waiting: this.#room?.size ?? 0,
      completed: this.#completed,
      failed: this.#failed,
      cancelled: this.#cancelled,
      freeSlots: this.#freeSlots,
      slotsMade: this.#slotsMade,
      paused: this.#paused,
      closed: this.#state !== OPEN,
    });
  }

  #closedError(): TypeError {
    return new TypeError(
      `The pool is closed (${this.#active} running, ${this.pending} waiting): it takes no new task after close()`,
    );
  }
}
