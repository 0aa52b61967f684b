/**
 * A distributed run on Cloudflare: `npx wrangler deploy` in this folder (see
 * `wrangler.toml`; `npx wrangler dev` runs it locally). A request starts a
 * run in a Durable Object (`Runs`), whose `rerank` stage goes through the
 * `sluice-tasks` queue to the consumer below; the results stream back over
 * SSE in input order.
 *
 * ```
 * curl -X POST https://<worker>/runs/r1/start -d '["a", "bb", "ccc"]'
 * curl https://<worker>/runs/r1/events   # SSE; resumes with Last-Event-ID
 * curl -X POST https://<worker>/runs/r1/abort
 * curl https://<worker>/runs/r1/status
 * ```
 *
 * @module
 */
import { map, pipeline } from "../../mod.ts";
import {
  consume,
  type HostedRun,
  type QueueProducer,
  remote,
  runFetch,
  type RunNamespace,
  SluiceRun,
} from "../../cloudflare.ts";

/** The bindings of `wrangler.toml`. */
export interface Env {
  SLUICE_QUEUE: QueueProducer;
  SLUICE_RUNS: RunNamespace;
}

/** One run: its input is a JSON array of texts. */
export class Runs extends SluiceRun<Env> {
  /** The run's pipeline; its remote stage sends to the queue. */
  override start(input: unknown): HostedRun<number> {
    if (!Array.isArray(input)) {
      throw new TypeError("the start request's body must be a JSON array");
    }
    const rerank = remote<string, number>("rerank", {
      queue: this.env.SLUICE_QUEUE,
      results: this,
    });
    return pipeline(
      map(rerank, { concurrency: 32, onError: "skip" }),
    ).run(input as string[]);
  }
}

export default {
  /** `/runs/<runId>/start | events | abort | status`. */
  fetch(request: Request, env: Env): Promise<Response> {
    const [, runs, runId] = new URL(request.url).pathname.split("/");
    if (runs !== "runs" || !runId) {
      return Promise.resolve(
        new Response("POST /runs/<id>/start, then GET /runs/<id>/events", {
          status: 404,
        }),
      );
    }
    return runFetch(env.SLUICE_RUNS, runId, request);
  },
  /** Both queues: the tasks, and the dead letters (`deadLetterQueue`). */
  queue: consume<Env>({
    rerank: (text: string) => {
      if (typeof text !== "string") throw new TypeError("not a text");
      return text.length;
    },
  }, {
    deadLetterQueue: "sluice-dlq",
    retryDelay: (attempts) => 2 ** attempts,
  }),
};
