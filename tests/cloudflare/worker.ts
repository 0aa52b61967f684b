// The Worker of tests/node/cloudflare.test.mjs: bundled with esbuild against
// the built npm package (sluice, sluice/cloudflare) and run in workerd by
// Miniflare with a queue, its dead-letter queue and the SluiceRun binding.
// Routes: /runs/<runId>/<start|events|abort|status>.
import { map, pipeline } from "sluice";
import {
  consume,
  type ConsumeContext,
  type QueueProducer,
  remote,
  runFetch,
  type RunNamespace,
  SluiceRun,
} from "sluice/cloudflare";

interface Env {
  SLUICE_QUEUE: QueueProducer;
  SLUICE_RUNS: RunNamespace;
}

/** The start request's body. */
interface Input {
  n: number;
  task: "square" | "flaky" | "slow";
  concurrency?: number;
  /** Sends every message twice (a duplicate delivery). */
  duplicate?: boolean;
}

/** A producer that sends every message twice. */
function doubled(queue: QueueProducer): QueueProducer {
  return {
    send: (body, options) => queue.send(body, options),
    sendBatch: async (messages) => {
      const list = [...messages];
      await queue.sendBatch(list);
      await queue.sendBatch(list);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TestRun extends SluiceRun<Env> {
  override start(input: unknown) {
    const { n, task, concurrency = 16, duplicate = false } = input as Input;
    const stage = remote<number, number>(task, {
      queue: duplicate ? doubled(this.env.SLUICE_QUEUE) : this.env.SLUICE_QUEUE,
      results: this,
    });
    return pipeline(map(stage, { concurrency, onError: "skip" }))
      .run(Array.from({ length: n }, (_, i) => i));
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    const [, runs, runId] = new URL(request.url).pathname.split("/");
    if (runs !== "runs" || !runId) {
      return Promise.resolve(new Response("not found", { status: 404 }));
    }
    return runFetch(env.SLUICE_RUNS, runId, request);
  },
  queue: consume<Env>({
    square: (n: number) => n * n,
    flaky: (n: number, ctx: ConsumeContext<Env>) => {
      if (n % 10 === 7) {
        throw new RangeError(`no ${n} (attempt ${ctx.attempt})`);
      }
      return n * n;
    },
    slow: async (n: number) => {
      await sleep(30);
      return n * n;
    },
  }, { deadLetterQueue: "sluice-dlq", retryDelay: 0 }),
};
