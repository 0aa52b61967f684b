// Shared cases of toSSE (lib/sse.ts): Server-Sent Events framing, run on every
// runtime like tests/cross/cases.ts. Streams are read with `new Response()`,
// which every runtime here has.
import { aborted, type Case, check, equal, gate, sleep } from "./_check.ts";

const text = (stream: ReadableStream<Uint8Array>) =>
  new Response(stream).text();

export const cases: Case[] = [
  {
    name:
      "toSSE() frames event, id and multi-line data, then a final done event",
    async run({ toSSE }) {
      const stream = toSSE(["one", "two\nlines"], {
        event: "word",
        id: (_, i) => String(i),
        serialize: String,
      });
      equal(
        await text(stream),
        "event: word\nid: 0\ndata: one\n\n" +
          "event: word\nid: 1\ndata: two\ndata: lines\n\n" +
          'event: done\ndata: {"results":2}\n\n',
      );
    },
  },
  {
    name:
      "toSSE() of a flow: one JSON data event per result in input order, done carries the stats",
    async run({ map, pipeline, toSSE }) {
      const flow = pipeline(map(async (x: number) => {
        await sleep(3 - x);
        return { x };
      }, { concurrency: 3 })).run([1, 2, 3]);
      const body = await text(toSSE(flow));
      const [events, done] = body.split("event: done\ndata: ");
      equal(events, 'data: {"x":1}\n\ndata: {"x":2}\n\ndata: {"x":3}\n\n');
      equal(JSON.parse(done).itemsOut, 3);
    },
  },
  {
    name: "toSSE() event as a function, a custom serializer and CRLF in data",
    async run({ toSSE }) {
      const body = await text(
        toSSE([1, 2], {
          event: (v) => (v % 2 ? "odd" : "even"),
          serialize: (v) => `n=${v}\r\nsquare=${v * v}`,
          endEvents: false,
        }),
      );
      equal(
        body,
        "event: odd\ndata: n=1\ndata: square=1\n\n" +
          "event: even\ndata: n=2\ndata: square=4\n\n",
      );
    },
  },

  {
    name: "toSSE() writes a comment heartbeat while the source is idle",
    async run({ toSSE }) {
      async function* slow() {
        yield 1;
        await sleep(60);
        yield 2;
      }
      const body = await text(toSSE(slow(), { heartbeatMs: 10 }));
      check(body.startsWith("data: 1\n\n"), body);
      check(body.includes(": heartbeat\n"), `no heartbeat in ${body}`);
      check(body.includes("data: 2\n\n"), body);
    },
  },
  {
    name: "toSSE() ends with an error event when the source fails",
    async run({ toSSE }) {
      function* failing() {
        yield "ok";
        throw new RangeError("went wrong");
      }
      const body = await text(toSSE(failing()));
      check(body.startsWith('data: "ok"\n\n'), body);
      const error = body.split("event: error\ndata: ")[1];
      check(error !== undefined, `no error event in ${body}`);
      const parsed = JSON.parse(error);
      equal([parsed.name, parsed.message], ["RangeError", "went wrong"]);
    },
  },
  {
    name: "toSSE() cancelling the stream aborts the flow's in-flight calls",
    async run({ map, pipeline, toSSE }) {
      let abortedCalls = 0;
      const started = gate();
      let count = 0;
      const flow = pipeline(map(async (_: number, ctx) => {
        if (++count === 2) started.resolve();
        await aborted(ctx.signal);
        abortedCalls++;
      }, { concurrency: 2 })).run([1, 2, 3, 4]);
      const reader = toSSE(flow).getReader();
      const pending = reader.read();
      await started.promise;
      await reader.cancel(new Error("client left"));
      await pending.catch(() => {});
      equal(abortedCalls, 2, "in-flight calls aborted and returned");
      equal(flow.stats().done, true);
    },
  },
  {
    name: "toSSE() with SSE_HEADERS makes a text/event-stream Response",
    async run({ SSE_HEADERS, toSSE }) {
      const res = new Response(toSSE(["x"], { endEvents: false }), {
        headers: SSE_HEADERS,
      });
      equal(
        res.headers.get("content-type"),
        "text/event-stream; charset=utf-8",
      );
      equal(res.headers.get("cache-control"), "no-cache");
      check(Object.isFrozen(SSE_HEADERS), "SSE_HEADERS is frozen");
      equal(await res.text(), 'data: "x"\n\n');
    },
  },
];
