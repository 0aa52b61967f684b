import { Flow } from "./flow.ts";
import type { Source } from "./types.ts";
import { isSource, openSource, type SourceReader } from "./_source.ts";
import type { FlowStats } from "./stats.ts";
import { toWire } from "./progress_wire.ts";
import {
  assertBoolean,
  assertDuration,
  assertFunction,
  assertInteger,
  assertOneOf,
  assertOptions,
  assertSignal,
  show,
} from "./_validate.ts";

/** Default idle time before a comment heartbeat (`SSEOptions.heartbeatMs`). */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** With `progress: "compact"`, every this many progress events is a keyframe. */
const KEYFRAME_EVERY = 10;

/**
 * Response headers for a Server-Sent Events stream: the `text/event-stream`
 * type, `cache-control: no-cache`, and `x-accel-buffering: no` (so a proxy
 * such as nginx passes each event on at once instead of buffering).
 *
 * @example Serving a stream
 * ```ts
 * import { SSE_HEADERS, toSSE } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const res = new Response(toSSE([1, 2]), { headers: SSE_HEADERS });
 * assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
 * assert.match(await res.text(), /^data: 1\n\ndata: 2\n\n/);
 * ```
 */
export const SSE_HEADERS: Readonly<Record<string, string>> =
  /* @__PURE__ */ Object.freeze({
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });

/** Options of {@linkcode toSSE}. */
export interface SSEOptions<T> {
  /**
   * The `event:` field of each result: a name, or `(value, index) => name`.
   * Without it (or with `""`) the field is left out, so an `EventSource`
   * fires its default `"message"` event. A name containing CR or LF is
   * refused (a `TypeError`: at the call site for a string, as the stream's
   * error for a function's result), so no value can inject fields.
   *
   * @default {undefined}
   */
  event?: string | ((value: T, index: number) => string);
  /**
   * The `id:` field of each result, `(value, index) => id`, with the
   * result's 0-based position (plus `startIndex`). A reconnecting
   * `EventSource` sends the last id it received as the `Last-Event-ID`
   * header, so an id made from the index lets a handler resume. An id
   * containing CR, LF or NUL is refused with a `TypeError`.
   *
   * @default {undefined (no id field)}
   */
  id?: (value: T, index: number) => string;
  /**
   * Turns a result into the event's data; a result whose data has line
   * breaks is written as several `data:` lines (an `EventSource` joins them
   * back with `\n`). Must return a string.
   *
   * @default {(value) => JSON.stringify(value)}
   */
  serialize?: (value: T, index: number) => string;
  /**
   * The index given to `event`, `id` and `serialize` for the first result:
   * when a handler resumes after `Last-Event-ID: 41` by skipping the first 42
   * items, `startIndex: 42` keeps the ids those results had the first time.
   *
   * @default {0}
   */
  startIndex?: number;
  /**
   * When given, the stream starts with `retry: <ms>`: how long an
   * `EventSource` waits before reconnecting after the connection is lost.
   *
   * @default {undefined (the browser's default, about 3 s)}
   */
  retry?: number;
  /**
   * After this many milliseconds without a write, a comment line
   * (`: heartbeat`) is written, and again every `heartbeatMs` while idle, so
   * proxies and load balancers keep an idle connection open. `0` turns
   * heartbeats off.
   *
   * @default {15000}
   */
  heartbeatMs?: number;
  /**
   * When `source` is a {@linkcode Flow}: every `progressMs` while the run
   * goes, an `event: progress` whose data is `JSON.stringify(flow.stats())`
   * (skipped while the reader has not yet taken the previous chunk, so a slow
   * client never makes them pile up). Without it, no progress events.
   *
   * @default {undefined}
   */
  progressMs?: number;
  /**
   * The shape of the `progress` events' data. `"compact"` (the default):
   * `JSON.stringify(toWire(stats, previous))`
   * (see {@linkcode toWire}): a keyframe with every figure dashboards show
   * first and every 10th event, deltas (the figures that changed since the
   * previous progress event) in between, decoded with {@linkcode fromWire}
   * or by the `<sluice-dashboard>` element (`web/sluice-dashboard.js`); a
   * twentieth of the bytes per second of `"full"`:
   * `JSON.stringify(flow.stats())` (about 3 kB for a five-stage run). The
   * final `done` event carries the full stats either way.
   *
   * @default {"compact"}
   */
  progress?: "full" | "compact";
  /**
   * Whether the stream ends with a final event: `event: done` when the
   * source is exhausted (data: `JSON.stringify(flow.stats())` for a
   * {@linkcode Flow}, so the totals; `{"results":N}` for another source), or
   * `event: error` when the source fails (data:
   * `{"name":…,"message":…}`). An `EventSource` reconnects whenever a
   * stream ends, so a page listens for `done` and `error` to call `close()`.
   * With `false`, the stream just closes at the end, and errors (the
   * response is cut off) when the source fails.
   *
   * @default {true}
   */
  endEvents?: boolean;
  /**
   * Interrupts the stream: the source is stopped (a flow is aborted with
   * `signal.reason`, an iterator's `return()` runs) and the stream closes
   * **without** a final event, like a dropped connection, so an
   * `EventSource` reconnects (and can resume with `Last-Event-ID`). To end
   * the stream for good with `event: error`, abort the flow instead. Pass
   * `request.signal` here on Cloudflare Workers: workerd does not cancel the
   * body when the client goes away, and aborts `request.signal` only (with
   * the `enable_request_signal` compatibility flag).
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

const LINE_BREAK = /\r\n|\r|\n/;
const NO_BREAK = /[\r\n]/;
const NO_BREAK_OR_NUL = /[\r\n\0]/;

function defaultSerialize(value: unknown): string {
  return JSON.stringify(value);
}

/** One event, `event:`, `id:`, then one `data:` line per line of `data`. */
function frame(
  event: string | undefined,
  id: string | undefined,
  data: string,
): string {
  let out = event ? `event: ${event}\n` : "";
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out + "\n";
}

/** Checks what an `event`, `id` or `serialize` function returned. */
function checked(name: string, value: unknown, index: number): string {
  if (typeof value !== "string") {
    throw new TypeError(
      `'${name}' must return a string: returned ${
        show(value)
      } for index ${index}`,
    );
  }
  if (
    name !== "serialize" &&
    (name === "id" ? NO_BREAK_OR_NUL : NO_BREAK).test(value)
  ) {
    throw new TypeError(
      `'${name}' must not contain ${
        name === "id" ? "CR, LF or NUL" : "CR or LF"
      }: returned ${show(value)} for index ${index}`,
    );
  }
  return value;
}

function errorData(error: unknown): string {
  const e = error as { name?: unknown; message?: unknown } | null;
  const isError = typeof e === "object" && e !== null &&
    typeof e.message === "string";
  return JSON.stringify({
    name: isError && typeof e.name === "string" ? e.name : "Error",
    message: isError ? e.message : String(error),
  });
}

function flowReader<T>(flow: Flow<T>): SourceReader<T> {
  const it = flow[Symbol.asyncIterator]();
  return {
    pull: () => it.next(),
    close: (reason) => flow.abort(reason),
    closeEndsPull: true,
    sync: false,
  };
}

/**
 * Streams the results of `source` as Server-Sent Events: a
 * `ReadableStream<Uint8Array>` in `text/event-stream` format, ready for
 * `new Response(stream, { headers: SSE_HEADERS })` in any runtime.
 *
 * One event per result, written as soon as the source yields it (a
 * {@linkcode Flow} in input order yields each result as soon as it and every
 * earlier one are done): `event:` (when `event` is set), `id:` (when `id` is
 * set), then one `data:` line per line of the serialized value, and a blank
 * line. The source is read only as fast as the stream is read (one event
 * ahead). Optional extras: `retry:` first, comment heartbeats while idle,
 * `event: progress` with the flow's stats, and a final `event: done` or
 * `event: error` (see {@linkcode SSEOptions}).
 *
 * Cancelling the stream (the client went away, so the runtime cancels the
 * response body) stops the source: a flow is aborted with the cancel reason
 * (every in-flight `ctx.signal` aborts, and `cancel()` resolves once every
 * call has returned); an iterator's `return()` runs; a `ReadableStream` is
 * cancelled. Every timer is cleared on every way the stream ends.
 *
 * @param source A {@linkcode Flow}, or any `Iterable`, `AsyncIterable` or
 * `ReadableStream`.
 * @param options Event names, ids, serialization, heartbeats, progress,
 * final events, interruption.
 * @returns The event stream.
 * @throws {TypeError} When `source` cannot be read, a flow already has a
 * consumer, an option has the wrong type, `event` contains CR or LF,
 * `progress` is not `"full"` or `"compact"`, or `progressMs` is given for a
 * source that is not a flow.
 * @throws {RangeError} When `startIndex` or `retry` is not an integer >= 0,
 * or `heartbeatMs` or `progressMs` not a number of ms from 0 (above 0 for
 * `progressMs`) to 2³¹−1.
 *
 * @example Framing: event names, ids, multi-line data, the final event
 * ```ts
 * import { toSSE } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const stream = toSSE(["one", "two\nlines"], {
 *   event: "word",
 *   id: (_, i) => String(i),
 *   serialize: String,
 * });
 * assert.equal(
 *   await new Response(stream).text(),
 *   "event: word\nid: 0\ndata: one\n\n" +
 *     "event: word\nid: 1\ndata: two\ndata: lines\n\n" +
 *     'event: done\ndata: {"results":2}\n\n',
 * );
 * ```
 *
 * @example A pipeline's results, with progress events
 * ```ts
 * import { map, pipeline, SSE_HEADERS, toSSE } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const flow = pipeline(map(async (x: number) => x * 2, { concurrency: 4 }))
 *   .run([1, 2, 3]);
 * const res = new Response(toSSE(flow, { progressMs: 1000 }), {
 *   headers: SSE_HEADERS,
 * });
 * const text = await res.text();
 * assert.match(text, /^data: 2\n\ndata: 4\n\ndata: 6\n\nevent: done\ndata: \{/);
 * const done = JSON.parse(text.split("event: done\ndata: ")[1]);
 * assert.equal(done.itemsOut, 3);
 * ```
 *
 * @example Cancelling the stream aborts the flow
 * ```ts
 * import { map, pipeline, toSSE } from "sluice";
 * import assert from "node:assert/strict";
 *
 * let aborted = 0;
 * const flow = pipeline(map((_: number, ctx) =>
 *   new Promise((resolve) => {
 *     ctx.signal.addEventListener("abort", () => resolve(aborted++));
 *   }), { concurrency: 3 })).run([1, 2, 3, 4]);
 * const reader = toSSE(flow).getReader();
 * await new Promise((resolve) => setTimeout(resolve, 10));
 * await reader.cancel(); // the client went away; resolves once all returned
 * assert.equal(aborted, 3); // every in-flight call saw ctx.signal abort
 * assert.equal(flow.stats().done, true);
 * ```
 */
export function toSSE<T>(
  source: Source<T>,
  options?: SSEOptions<T>,
): ReadableStream<Uint8Array> {
  if (!isSource(source)) {
    throw new TypeError(
      `'source' must be a Flow, an Iterable, an AsyncIterable or a ReadableStream: current value is ${
        show(source)
      }`,
    );
  }
  assertOptions("options", options, "toSSE()", [
    "event",
    "id",
    "serialize",
    "startIndex",
    "retry",
    "heartbeatMs",
    "progressMs",
    "progress",
    "endEvents",
    "signal",
  ]);
  const {
    event,
    id,
    serialize = defaultSerialize,
    startIndex = 0,
    retry,
    heartbeatMs = DEFAULT_HEARTBEAT_MS,
    progressMs,
    progress: progressShape = "compact",
    endEvents = true,
    signal,
  } = options ?? {};
  if (typeof event === "string") {
    if (NO_BREAK.test(event)) {
      throw new TypeError(
        `'event' must not contain CR or LF: current value is ${show(event)}`,
      );
    }
  } else if (event !== undefined) {
    assertFunction("event", event);
  }
  if (id !== undefined) assertFunction("id", id);
  assertFunction("serialize", serialize);
  assertInteger("startIndex", startIndex, 0);
  if (retry !== undefined) assertInteger("retry", retry, 0);
  assertDuration("heartbeatMs", heartbeatMs);
  if (progressMs !== undefined) {
    assertDuration("progressMs", progressMs, { positive: true });
    if (!(source instanceof Flow)) {
      throw new TypeError(
        `'progressMs' needs a Flow as the source (its stats are the progress): current source is ${
          show(source)
        }`,
      );
    }
  }
  assertOneOf("progress", progressShape, ["full", "compact"] as const);
  assertBoolean("endEvents", endEvents);
  assertSignal(signal);

  const flow = source instanceof Flow ? source as Flow<T> : undefined;
  // Opened now, so a flow that already has a consumer throws here.
  const reader = flow ? flowReader(flow) : openSource(source);
  const encoder = new TextEncoder();

  let controller!: ReadableStreamDefaultController<Uint8Array>;
  // "open": results flow; "ending": the source is being stopped, then the
  // stream ends; "closed": nothing more is written.
  let state: "open" | "ending" | "closed" = "open";
  let pulling = false;
  let index = startIndex;
  let results = 0;
  let lastWrite = Date.now();
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  let progressTimer: ReturnType<typeof setInterval> | undefined;
  // With progress: "compact": the stats of the last progress event written,
  // and how many were written (a keyframe every KEYFRAME_EVERY).
  let lastProgress: FlowStats | undefined;
  let progressCount = 0;

  const write = (text: string): void => {
    controller.enqueue(encoder.encode(text));
    lastWrite = Date.now();
  };
  // Whether the reader has taken everything written so far.
  const drained = (): boolean => (controller.desiredSize ?? 0) > 0;

  const clearAll = (): void => {
    if (heartbeatTimer !== undefined) clearTimeout(heartbeatTimer);
    if (progressTimer !== undefined) clearInterval(progressTimer);
    heartbeatTimer = progressTimer = undefined;
    signal?.removeEventListener("abort", onAbort);
  };

  type Outcome =
    | { kind: "done" }
    | { kind: "error"; error: unknown }
    | { kind: "interrupted" };

  const end = (outcome: Outcome): void => {
    if (state === "closed") return;
    state = "closed";
    clearAll();
    if (outcome.kind === "error" && !endEvents) {
      controller.error(outcome.error);
      return;
    }
    if (endEvents && outcome.kind !== "interrupted") {
      let text: string;
      if (outcome.kind === "done") {
        let totals: string;
        try {
          totals = JSON.stringify(flow ? flow.stats() : { results });
        } catch (error) {
          controller.error(error);
          return;
        }
        text = frame("done", undefined, totals);
      } else {
        text = frame("error", undefined, errorData(outcome.error));
      }
      write(text);
    }
    controller.close();
  };

  // Stops the source, then ends the stream.
  const stop = async (reason: unknown, outcome: Outcome): Promise<void> => {
    if (state !== "open") return;
    state = "ending";
    clearAll();
    const closing = Promise.resolve().then(() => reader.close(reason));
    // An iterator's return() waits behind a pending next(), which may never
    // settle: then it is not awaited (its failure has nobody to go to).
    if (!pulling || reader.closeEndsPull) {
      try {
        await closing;
      } catch {
        // The stream already ends with an error or an interruption.
      }
    } else closing.catch(() => {});
    end(outcome);
  };

  const onAbort = (): void => {
    void stop(signal!.reason, { kind: "interrupted" });
  };

  const heartbeat = (): void => {
    heartbeatTimer = undefined;
    if (state !== "open") return;
    const idle = Date.now() - lastWrite;
    if (idle >= heartbeatMs) {
      // A chunk still queued means the reader is slow, not that we are idle.
      if (drained()) write(": heartbeat\n\n");
      else lastWrite = Date.now();
      heartbeatTimer = setTimeout(heartbeat, heartbeatMs);
    } else {
      heartbeatTimer = setTimeout(heartbeat, heartbeatMs - idle);
    }
  };

  const progress = (): void => {
    if (state !== "open" || !drained()) return;
    let text: string;
    let stats: FlowStats;
    try {
      stats = flow!.stats();
      const data = progressShape === "full" ? stats : toWire(
        stats,
        progressCount % KEYFRAME_EVERY === 0 ? undefined : lastProgress,
      );
      text = frame("progress", undefined, JSON.stringify(data));
    } catch (error) {
      void stop(error, { kind: "error", error });
      return;
    }
    lastProgress = stats;
    progressCount++;
    write(text);
  };

  const format = (value: T, i: number): string => {
    const name = typeof event === "function"
      ? checked("event", event(value, i), i)
      : event;
    const eventId = id ? checked("id", id(value, i), i) : undefined;
    return frame(name, eventId, checked("serialize", serialize(value, i), i));
  };

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (retry !== undefined) write(`retry: ${retry}\n\n`);
      if (heartbeatMs > 0) heartbeatTimer = setTimeout(heartbeat, heartbeatMs);
      if (progressMs !== undefined) {
        progressTimer = setInterval(progress, progressMs);
      }
      if (signal) {
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }
    },
    async pull() {
      if (state !== "open") return;
      let result: IteratorResult<T>;
      pulling = true;
      try {
        result = await reader.pull();
      } catch (error) {
        pulling = false;
        if (state === "open") end({ kind: "error", error });
        return;
      }
      pulling = false;
      if (state !== "open") return;
      if (result.done) return end({ kind: "done" });
      let text: string;
      try {
        text = format(result.value, index);
      } catch (error) {
        return stop(error, { kind: "error", error });
      }
      index++;
      results++;
      write(text);
    },
    async cancel(reason) {
      if (state === "closed") return;
      const wasOpen = state === "open";
      state = "closed";
      clearAll();
      if (!wasOpen) return; // stop() is already closing the source
      const why = reason ??
        new DOMException("The event stream was cancelled", "AbortError");
      if (!pulling || reader.closeEndsPull) await reader.close(why);
      else Promise.resolve().then(() => reader.close(why)).catch(() => {});
    },
  });
}
