import assert from "node:assert/strict";
import { Flow } from "../lib/flow.ts";
import type { FlowStats } from "../lib/stats.ts";
import { map } from "../lib/map.ts";
import { pipeline } from "../lib/pipeline.ts";
import { DEFAULT_HEARTBEAT_MS, toSSE } from "../lib/sse.ts";
import { fromWire, type ProgressSnapshot } from "../lib/progress_wire.ts";
import { deferred, sleep } from "./_helpers.ts";

// ---- helpers --------------------------------------------------------------

/** One dispatched event, as an EventSource would see it. */
interface Dispatched {
  event: string;
  data: string;
  lastEventId: string;
}

/** What a stream said, read the way the HTML spec's parser reads it. */
interface Parsed {
  events: Dispatched[];
  comments: string[];
  retry: number | undefined;
}

/**
 * The event-stream interpretation algorithm of the HTML spec (§9.2.6), so the
 * tests check what a browser would dispatch, not just the bytes.
 */
function parse(text: string): Parsed {
  const events: Dispatched[] = [];
  const comments: string[] = [];
  let retry: number | undefined;
  let data = "";
  let type = "";
  let lastEventId = "";
  let idBuffer = "";
  const lines = text.split(/\r\n|\r|\n/);
  lines.pop(); // the text after the last line break is an incomplete line
  for (const line of lines) {
    if (line === "") {
      lastEventId = idBuffer;
      if (data === "") {
        type = "";
        continue;
      }
      events.push({
        event: type || "message",
        data: data.endsWith("\n") ? data.slice(0, -1) : data,
        lastEventId,
      });
      data = "";
      type = "";
      continue;
    }
    if (line.startsWith(":")) {
      comments.push(line.slice(1));
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data += value + "\n";
    else if (field === "id" && !value.includes("\0")) idBuffer = value;
    else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
  }
  return { events, comments, retry };
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

/** Reads every chunk, decoded, each with the time it arrived. */
async function chunks(
  stream: ReadableStream<Uint8Array>,
): Promise<{ text: string; at: number }[]> {
  const out: { text: string; at: number }[] = [];
  const decoder = new TextDecoder();
  const start = performance.now();
  for await (const chunk of stream) {
    out.push({ text: decoder.decode(chunk), at: performance.now() - start });
  }
  return out;
}

/** An async source that records what happened to it. */
function tracked<T>(items: T[], delayMs = 0) {
  const log = { pulled: 0, returned: false };
  async function* gen(): AsyncGenerator<T> {
    try {
      for (const item of items) {
        if (delayMs > 0) await sleep(delayMs);
        log.pulled++;
        yield item;
      }
    } finally {
      log.returned = true;
    }
  }
  return { source: gen(), log };
}

/** A flow whose calls wait until their signal aborts, recording the reasons. */
function hangingFlow(n: number, concurrency: number) {
  const seen: { aborted: boolean; reason: unknown }[] = [];
  const flow = pipeline(
    map((_: number, ctx) =>
      new Promise<number>((resolve) => {
        ctx.signal.addEventListener("abort", () => {
          seen.push({ aborted: ctx.signal.aborted, reason: ctx.signal.reason });
          resolve(0);
        }, { once: true });
      }), { concurrency }),
  ).run(Array.from({ length: n }, (_, i) => i));
  return { flow, seen };
}

const encode = (s: string) => new TextEncoder().encode(s);

// ---- framing --------------------------------------------------------------

Deno.test("toSSE() writes one data line per result, JSON by default, then done", async () => {
  const body = await text(toSSE([1, "two", { three: 3 }, [4]]));
  assert.equal(
    body,
    'data: 1\n\ndata: "two"\n\ndata: {"three":3}\n\ndata: [4]\n\n' +
      'event: done\ndata: {"results":4}\n\n',
  );
  const { events } = parse(body);
  assert.deepEqual(events.map((e) => e.event), [
    "message",
    "message",
    "message",
    "message",
    "done",
  ]);
  assert.deepEqual(events.slice(0, 4).map((e) => JSON.parse(e.data)), [
    1,
    "two",
    { three: 3 },
    [4],
  ]);
});

Deno.test("toSSE() splits data on CRLF, CR and LF into data lines, keeping empty and spaced lines", async () => {
  const payload = "a\r\nb\rc\nd\n\n  e \n";
  const body = await text(toSSE([payload], { serialize: (s) => s }));
  assert.equal(
    body.split("event: done")[0],
    "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata:   e \ndata: \n\n",
  );
  // What an EventSource hands to the page: the lines joined with LF.
  assert.equal(parse(body).events[0].data, "a\nb\nc\nd\n\n  e \n");
});

Deno.test("toSSE() writes event and id fields, from a string or per value", async () => {
  const body = await text(toSSE(["x", "y"], {
    event: "token",
    id: (v, i) => `${i}-${v}`,
  }));
  assert.equal(
    body,
    'event: token\nid: 0-x\ndata: "x"\n\nevent: token\nid: 1-y\ndata: "y"\n\n' +
      'event: done\ndata: {"results":2}\n\n',
  );
  const per = parse(
    await text(toSSE([1, 2, 3], { event: (v) => (v % 2 ? "odd" : "even") })),
  );
  assert.deepEqual(per.events.map((e) => e.event), [
    "odd",
    "even",
    "odd",
    "done",
  ]);
});

Deno.test("toSSE() leaves the event field out for an empty name (the default message event)", async () => {
  const body = await text(toSSE([1], { event: "", endEvents: false }));
  assert.equal(body, "data: 1\n\n");
  const fn = await text(toSSE([1], { event: () => "", endEvents: false }));
  assert.equal(fn, "data: 1\n\n");
});

Deno.test("toSSE() passes each value and its index to serialize, event and id", async () => {
  const calls: string[] = [];
  await text(toSSE(["a", "b"], {
    serialize: (v, i) => (calls.push(`s${v}${i}`), v),
    event: (v, i) => (calls.push(`e${v}${i}`), "x"),
    id: (v, i) => (calls.push(`i${v}${i}`), String(i)),
  }));
  assert.deepEqual(calls, ["ea0", "ia0", "sa0", "eb1", "ib1", "sb1"]);
});

Deno.test("toSSE() starts ids at startIndex (resuming after Last-Event-ID)", async () => {
  const items = ["a", "b", "c", "d", "e"];
  const lastEventId = "1"; // the client got a and b
  const from = Number(lastEventId) + 1;
  const body = await text(toSSE(items.slice(from), {
    startIndex: from,
    id: (_, i) => String(i),
    serialize: (v, i) => `${i}:${v}`,
  }));
  const { events } = parse(body);
  assert.deepEqual(events.map((e) => [e.lastEventId, e.data]), [
    ["2", "2:c"],
    ["3", "3:d"],
    ["4", "4:e"],
    ["4", '{"results":3}'], // the done event has no id: the last one stays
  ]);
});

Deno.test("toSSE() writes retry first when asked", async () => {
  const body = await text(toSSE([1], { retry: 1500, endEvents: false }));
  assert.equal(body, "retry: 1500\n\ndata: 1\n\n");
  assert.equal(parse(body).retry, 1500);
});

Deno.test("toSSE() encodes UTF-8 and writes each event as one chunk", async () => {
  const got = await chunks(toSSE(["héllo ✓", "🚀\nδ"], { serialize: String }));
  assert.deepEqual(got.map((c) => c.text), [
    "data: héllo ✓\n\n",
    "data: 🚀\ndata: δ\n\n",
    'event: done\ndata: {"results":2}\n\n',
  ]);
});

Deno.test("toSSE() reads a ReadableStream source and a sync iterable", async () => {
  const stream = ReadableStream.from(["a", "b"]);
  assert.deepEqual(parse(await text(toSSE(stream))).events.length, 3);
  function* gen() {
    yield 1;
    yield 2;
  }
  assert.equal(
    await text(toSSE(gen(), { endEvents: false })),
    "data: 1\n\ndata: 2\n\n",
  );
});

// ---- no field injection -----------------------------------------------------

for (const bad of ["a\nb", "a\rb", "a\r\nb", "\n", "x\ndata: injected"]) {
  Deno.test(`toSSE() refuses the event name ${JSON.stringify(bad)} at the call site`, () => {
    assert.throws(() => toSSE([1], { event: bad }), {
      name: "TypeError",
      message: `'event' must not contain CR or LF: current value is ${
        JSON.stringify(bad)
      }`,
    });
  });
}

Deno.test("toSSE() ends with an error event, and stops the source, when event() returns a line break", async () => {
  const { source, log } = tracked([1, 2, 3]);
  const body = await text(toSSE(source, {
    event: (v) => (v === 2 ? "ok\ndata: injected" : "ok"),
  }));
  const { events } = parse(body);
  assert.deepEqual(events.map((e) => e.event), ["ok", "error"]);
  assert.deepEqual(JSON.parse(events[1].data), {
    name: "TypeError",
    message:
      `'event' must not contain CR or LF: returned "ok\\ndata: injected" for index 1`,
  });
  assert(!body.includes("injected\n"), "nothing of the bad value was written");
  assert.equal(log.returned, true);
  assert.equal(log.pulled, 2);
});

for (const bad of ["1\n", "1\r2", "\r\n", "7\0"]) {
  Deno.test(`toSSE() refuses the id ${JSON.stringify(bad)} with an error event`, async () => {
    const body = await text(toSSE(["a"], { id: () => bad }));
    const { events } = parse(body);
    assert.equal(events.length, 1);
    assert.equal(events[0].event, "error");
    assert.match(
      JSON.parse(events[0].data).message,
      /^'id' must not contain CR, LF or NUL: returned ".*" for index 0$/,
    );
    assert(!body.includes("id:"), body);
  });
}

Deno.test("toSSE() refuses non-string results of id, event and serialize", async () => {
  const cases: [string, Parameters<typeof toSSE<number>>[1]][] = [
    ["'id' must return a string: returned 3 for index 0", {
      id: () => 3 as unknown as string,
    }],
    ["'event' must return a string: returned null for index 0", {
      event: () => null as unknown as string,
    }],
    ["'serialize' must return a string: returned undefined for index 0", {
      serialize: () => undefined as unknown as string,
    }],
  ];
  for (const [message, options] of cases) {
    const { events } = parse(await text(toSSE([1], options)));
    assert.deepEqual(events.map((e) => e.event), ["error"]);
    assert.equal(JSON.parse(events[0].data).message, message);
  }
  // JSON.stringify(undefined) is undefined: not an event.
  const { events } = parse(await text(toSSE([undefined])));
  assert.match(JSON.parse(events[0].data).message, /returned undefined/);
});

Deno.test("toSSE() with a failing serialize aborts the flow it reads", async () => {
  const { flow, seen } = hangingFlow(5, 2);
  const boom = new Error("cannot serialize");
  const fast = pipeline(map((x: number) => x)).run([1, 2]);
  const body = await text(toSSE(fast, {
    serialize: () => {
      throw boom;
    },
  }));
  assert.deepEqual(JSON.parse(parse(body).events[0].data), {
    name: "Error",
    message: "cannot serialize",
  });
  assert.equal(fast.stats().done, true);
  await flow.abort();
  assert.equal(seen.length, 2);
});

// ---- final events and errors --------------------------------------------------

Deno.test("toSSE() of a flow ends with done carrying the final stats", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(x);
    return x;
  }, { concurrency: 3 })).run([30, 5, 10, 1]);
  const { events } = parse(await text(toSSE(flow)));
  assert.deepEqual(events.slice(0, 4).map((e) => Number(e.data)), [
    30,
    5,
    10,
    1,
  ]);
  const done = JSON.parse(events[4].data) as FlowStats;
  assert.equal(events[4].event, "done");
  assert.equal(done.done, true);
  assert.equal(done.itemsIn, 4);
  assert.equal(done.itemsOut, 4);
  assert.equal(done.results, 4);
  assert.equal(done.stages[0].completed, 4);
});

Deno.test("toSSE() ends with an error event naming the failure of the source", async () => {
  async function* failing() {
    yield 1;
    throw new RangeError("the source broke");
  }
  const { events } = parse(await text(toSSE(failing())));
  assert.deepEqual(events.map((e) => e.event), ["message", "error"]);
  assert.deepEqual(JSON.parse(events[1].data), {
    name: "RangeError",
    message: "the source broke",
  });

  const flow = pipeline(map((x: number) => {
    if (x === 2) throw new Error("no 2");
    return x;
  }, { name: "check" })).run([1, 2, 3]);
  const failed = parse(await text(toSSE(flow)));
  assert.deepEqual(failed.events.map((e) => e.event), ["message", "error"]);
  const error = JSON.parse(failed.events[1].data);
  assert.equal(error.name, "PipelineError");
  assert.match(error.message, /check/);

  async function* throwsString() {
    yield* [];
    throw "plain";
  }
  const plain = parse(await text(toSSE(throwsString())));
  assert.deepEqual(JSON.parse(plain.events[0].data), {
    name: "Error",
    message: "plain",
  });
});

Deno.test("toSSE() with endEvents: false closes at the end and errors the stream on failure", async () => {
  assert.equal(await text(toSSE([1], { endEvents: false })), "data: 1\n\n");
  const boom = new Error("boom");
  async function* failing() {
    yield 1;
    throw boom;
  }
  const reader = toSSE(failing(), { endEvents: false }).getReader();
  assert.equal(
    new TextDecoder().decode((await reader.read()).value),
    "data: 1\n\n",
  );
  await assert.rejects(reader.read(), (e) => e === boom);
});

Deno.test("toSSE() of a flow aborted by someone else ends with an error event", async () => {
  const { flow, seen } = hangingFlow(3, 3);
  const stream = toSSE(flow);
  setTimeout(() => flow.abort(new Error("shutting down")), 10);
  const { events } = parse(await text(stream));
  assert.deepEqual(events.map((e) => e.event), ["error"]);
  assert.equal(JSON.parse(events[0].data).message, "shutting down");
  assert.equal(seen.length, 3);
});

// ---- cancellation (the client went away) ----------------------------------

Deno.test("toSSE() cancel aborts the flow: every in-flight ctx.signal aborts before cancel resolves", async () => {
  const { flow, seen } = hangingFlow(10, 4);
  const reader = toSSE(flow, { heartbeatMs: 5, progressMs: 5 }).getReader();
  await sleep(20);
  const readBefore = flow.stats().itemsIn;
  const reason = new Error("client gone");
  await reader.cancel(reason);
  assert.equal(seen.length, 4);
  assert(seen.every((s) => s.aborted && s.reason === reason));
  const stats = flow.stats();
  assert.equal(stats.done, true);
  assert.equal(stats.running, 0);
  assert.equal(stats.itemsIn, readBefore, "the source was not read further");
});

Deno.test("toSSE() cancel without a reason aborts the flow with an AbortError", async () => {
  const { flow, seen } = hangingFlow(2, 2);
  const stream = toSSE(flow);
  await sleep(5);
  await stream.cancel();
  assert.equal(seen.length, 2);
  assert(seen[0].reason instanceof DOMException);
  assert.equal((seen[0].reason as DOMException).name, "AbortError");
});

Deno.test("toSSE() cancel mid-stream stops a flow with results already delivered", async () => {
  let started = 0;
  const aborted: number[] = [];
  const flow = pipeline(map(async (x: number, ctx) => {
    started++;
    await sleep(x === 0 ? 1 : 10_000, ctx.signal);
    if (ctx.signal.aborted) aborted.push(x);
    return x;
  }, { concurrency: 3 })).run([0, 1, 2, 3, 4, 5]);
  const reader = toSSE(flow).getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "data: 0\n\n");
  await reader.cancel();
  assert.deepEqual(aborted.sort(), [1, 2, 3]);
  assert.equal(started, 4);
});

Deno.test("toSSE() cancel calls return() of an async iterator source", async () => {
  const { source, log } = tracked([1, 2, 3, 4]);
  const reader = toSSE(source).getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(log.returned, true);
  assert(log.pulled <= 2, `pulled ${log.pulled}`);
});

Deno.test("toSSE() cancel does not wait for an async generator stuck in its own await", async () => {
  const gate = deferred();
  let finished = false;
  async function* stuck() {
    try {
      await gate.promise;
      yield 1;
    } finally {
      finished = true;
    }
  }
  const stream = toSSE(stuck());
  await sleep(5);
  await stream.cancel(); // must not hang on the pending next()
  assert.equal(finished, false);
  gate.resolve();
  await sleep(1);
  assert.equal(finished, true, "return() ran once the pending next() settled");
});

Deno.test("toSSE() cancel cancels a ReadableStream source with the reason", async () => {
  const reasons: unknown[] = [];
  const source = new ReadableStream<number>({
    pull(c) {
      c.enqueue(1);
    },
    cancel(reason) {
      reasons.push(reason);
    },
  });
  const reader = toSSE(source).getReader();
  await reader.read();
  await reader.cancel("bye");
  assert.deepEqual(reasons, ["bye"]);
});

Deno.test("toSSE() reads the source one event ahead of the reader, no more", async () => {
  let pulled = 0;
  const source = {
    [Symbol.iterator]() {
      return {
        next: () => ({ done: false, value: pulled++ }),
      };
    },
  };
  const reader = toSSE(source as Iterable<number>).getReader();
  await reader.read();
  await reader.read();
  await sleep(5);
  assert(pulled <= 3, `pulled ${pulled}`);
  await reader.cancel();
});

// ---- signal: interruption ------------------------------------------------------

Deno.test("toSSE() signal interrupts: the flow aborts with the reason, the stream closes with no final event", async () => {
  const { flow, seen } = hangingFlow(4, 2);
  const controller = new AbortController();
  const stream = toSSE(flow, {
    signal: controller.signal,
    heartbeatMs: 5,
    progressMs: 50,
  });
  const reason = new Error("server shutting down");
  setTimeout(() => controller.abort(reason), 15);
  const body = await text(stream);
  const { events, comments } = parse(body);
  assert.deepEqual(events, []);
  assert(comments.length >= 1, "heartbeats while idle");
  assert.equal(seen.length, 2);
  assert(seen.every((s) => s.reason === reason));
  assert.equal(
    flow.stats().done,
    true,
    "the flow settled before the stream closed",
  );
});

Deno.test("toSSE() with an aborted signal stops the source at once", async () => {
  const log = { pulled: 0, returned: 0 };
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.resolve({ done: false, value: log.pulled++ }),
      return: () => {
        log.returned++;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  const body = await text(toSSE(source, {
    signal: AbortSignal.abort(),
    retry: 10,
  }));
  assert.equal(body, "retry: 10\n\n");
  assert.deepEqual(log, { pulled: 0, returned: 1 });
});

Deno.test("toSSE() signal removes its listener when the stream ends", async () => {
  const controller = new AbortController();
  let added = 0;
  let removed = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    added++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    removed++;
    remove(...args);
  };
  await text(toSSE([1, 2], { signal }));
  assert.equal(added, 1);
  assert.equal(removed, 1);
});

// ---- heartbeats and progress ------------------------------------------------

Deno.test("toSSE() writes comment heartbeats while the source is idle", async () => {
  const { source } = tracked(["late"], 70);
  const got = await chunks(toSSE(source, { heartbeatMs: 15 }));
  const beats = got.filter((c) => c.text === ": heartbeat\n\n");
  assert(beats.length >= 2, `${beats.length} heartbeats`);
  assert.equal(got.at(-2)!.text, 'data: "late"\n\n');
  assert.equal(got.length, beats.length + 2);
  // An EventSource dispatches nothing for a comment.
  assert.equal(parse(got.map((c) => c.text).join("")).events.length, 2);
});

Deno.test("toSSE() writes no heartbeat while events keep coming, none with heartbeatMs: 0", async () => {
  const { source } = tracked([1, 2, 3, 4, 5, 6], 5);
  const busy = await text(toSSE(source, { heartbeatMs: 30 }));
  assert(!busy.includes(": heartbeat"), busy);
  const idle = tracked([1], 40);
  const off = await text(toSSE(idle.source, { heartbeatMs: 0 }));
  assert(!off.includes(": heartbeat"), off);
  assert.equal(DEFAULT_HEARTBEAT_MS, 15_000);
});

Deno.test('toSSE() progress: "full" interleaves progress events with the flow\'s stats at progressMs', async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(25);
    return x;
  }, { concurrency: 2 })).run([1, 2, 3, 4, 5, 6]);
  const { events } = parse(
    await text(toSSE(flow, { progressMs: 10, progress: "full" })),
  );
  const progress = events.filter((e) => e.event === "progress");
  assert(progress.length >= 3, `${progress.length} progress events`);
  const stats = progress.map((e) => JSON.parse(e.data) as FlowStats);
  for (const s of stats) {
    assert.equal(typeof s.itemsIn, "number");
    assert.equal(s.stages[0].concurrency, 2);
  }
  const out = stats.map((s) => s.itemsOut);
  assert.deepEqual(out, [...out].sort((a, b) => a - b), "never goes back");
  assert.deepEqual(
    events.filter((e) => e.event === "message").map((e) => Number(e.data)),
    [1, 2, 3, 4, 5, 6],
  );
  assert.equal(events.at(-1)!.event, "done");
  assert.equal((JSON.parse(events.at(-1)!.data) as FlowStats).itemsOut, 6);
});

// ---- arrival: each event when its result is ready ---------------------------

Deno.test("toSSE() writes each result as soon as order allows, not at the end", async () => {
  const delays = [10, 60, 20, 110, 30];
  const flow = pipeline(map(async (ms: number) => {
    await sleep(ms);
    return ms;
  }, { concurrency: 5 })).run(delays);
  const got = (await chunks(toSSE(flow))).filter((c) =>
    c.text.startsWith("data:")
  );
  assert.deepEqual(got.map((c) => c.text), delays.map((d) => `data: ${d}\n\n`));
  const [a, b, c, d, e] = got.map((c) => c.at);
  assert(a < 45, `first after ${a} ms`);
  assert(b >= 55 && c - b < 15, "the third waits for the second only");
  assert(d >= 100 && e - d < 15, "the fifth waits for the fourth only");
  assert(d - a >= 80, "spread over time");
});

// ---- validation ---------------------------------------------------------------

Deno.test("toSSE() validates its arguments at the call site", () => {
  const cases: [() => unknown, string, string][] = [
    [
      () => toSSE(null as never),
      "TypeError",
      "'source' must be a Flow, an Iterable, an AsyncIterable or a ReadableStream: current value is null",
    ],
    [
      () => toSSE(5 as never),
      "TypeError",
      "'source' must be a Flow, an Iterable, an AsyncIterable or a ReadableStream: current value is 5",
    ],
    [
      () => toSSE([], "x" as never),
      "TypeError",
      `'options' must be an object: current value is "x"`,
    ],
    [
      () => toSSE([], { event: 3 as never }),
      "TypeError",
      "'event' must be a function: current value is 3",
    ],
    [
      () => toSSE([], { id: "7" as never }),
      "TypeError",
      `'id' must be a function: current value is "7"`,
    ],
    [
      () => toSSE([], { serialize: null as never }),
      "TypeError",
      "'serialize' must be a function: current value is null",
    ],
    [
      () => toSSE([], { startIndex: -1 }),
      "RangeError",
      "'startIndex' must be an integer >= 0: current value is -1",
    ],
    [
      () => toSSE([], { startIndex: 1.5 }),
      "RangeError",
      "'startIndex' must be an integer >= 0: current value is 1.5",
    ],
    [
      () => toSSE([], { retry: -5 }),
      "RangeError",
      "'retry' must be an integer >= 0: current value is -5",
    ],
    [
      () => toSSE([], { retry: "3" as never }),
      "TypeError",
      `'retry' must be an integer >= 0: current value is "3"`,
    ],
    [
      () => toSSE([], { heartbeatMs: -1 }),
      "RangeError",
      "'heartbeatMs' must be a number of ms >= 0 and <= 2147483647: current value is -1",
    ],
    [
      () => toSSE([], { heartbeatMs: NaN }),
      "RangeError",
      "'heartbeatMs' must be a number of ms >= 0 and <= 2147483647: current value is NaN",
    ],
    [
      () => toSSE([], { progressMs: 10 }),
      "TypeError",
      "'progressMs' needs a Flow as the source (its stats are the progress): current source is an array",
    ],
    [
      () => toSSE([], { endEvents: "yes" as never }),
      "TypeError",
      `'endEvents' must be a boolean: current value is "yes"`,
    ],
    [
      () => toSSE([], { signal: {} as never }),
      "TypeError",
      "'signal' must be an AbortSignal: current value is an object",
    ],
  ];
  for (const [call, name, message] of cases) {
    assert.throws(call, { name, message });
  }
});

Deno.test("toSSE() refuses progressMs: 0 and a flow that already has a consumer", async () => {
  const flow = pipeline(map((x: number) => x)).run([1]);
  assert.throws(() => toSSE(flow, { progressMs: 0 }), {
    name: "RangeError",
    message:
      "'progressMs' must be a number of ms > 0 and <= 2147483647: current value is 0",
  });
  assert(flow instanceof Flow);
  const stream = toSSE(flow);
  assert.throws(() => toSSE(flow), {
    name: "TypeError",
    message: /already consumed by a for await loop/,
  });
  await text(stream);
});

Deno.test("toSSE() bytes match a hand-written stream", async () => {
  const body = new Uint8Array(
    await new Response(
      toSSE(["a"], { event: "e", id: () => "1", retry: 5 }),
    ).arrayBuffer(),
  );
  assert.deepEqual(
    body,
    encode(
      'retry: 5\n\nevent: e\nid: 1\ndata: "a"\n\nevent: done\ndata: {"results":1}\n\n',
    ),
  );
});

Deno.test("toSSE() progress events are compact by default: a keyframe, then deltas, that fromWire() decodes", async () => {
  const flow = pipeline(map(async (x: number) => {
    await sleep(25);
    return x;
  }, { concurrency: 2, name: "work" })).run([1, 2, 3, 4, 5, 6]);
  const { events } = parse(await text(toSSE(flow, { progressMs: 10 })));
  const wires = events.filter((e) => e.event === "progress").map((e) =>
    JSON.parse(e.data)
  );
  assert(wires.length >= 3, `${wires.length} progress events`);
  assert.deepEqual(wires[0].s, ["work"], "the first is a keyframe");
  assert(wires.slice(1, 9).every((w) => "d" in w), "then deltas");
  let snapshot: ProgressSnapshot | undefined;
  const out: number[] = [];
  for (const w of wires) {
    snapshot = fromWire(w, snapshot);
    out.push(snapshot!.itemsOut);
    assert.equal(snapshot!.stages[0].concurrency, 2);
  }
  assert.deepEqual(out, [...out].sort((a, b) => a - b), "never goes back");
  assert.equal((JSON.parse(events.at(-1)!.data) as FlowStats).itemsOut, 6);
});
