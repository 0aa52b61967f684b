// Uses the public API the way an application would; must type-check cleanly
// against npm/types (ES module consumer: the "import" condition).
import {
  batch,
  filter,
  flatten,
  type Flow,
  type FlowStats,
  formatProgress,
  map,
  type MapOptions,
  pipeline,
  type Pipeline,
  PipelineError,
  type TaskContext,
  TimeoutError,
} from "sluice";

interface Doc {
  id: number;
  text: string;
}

async function fetchDoc(id: number, ctx: TaskContext): Promise<Doc> {
  ctx.signal.throwIfAborted();
  return { id, text: `doc ${id} (worker ${ctx.workerId})` };
}

const options: MapOptions = {
  concurrency: 4,
  retry: { attempts: 3, delayMs: 10, retryIf: (e) => !(e instanceof TimeoutError) },
  timeoutMs: 1_000,
  onError: (_error, _item, ctx) => (ctx.attempt > 1 ? "skip" : { value: null }),
  rateLimit: { limit: 10, intervalMs: 1_000 },
};

const rag: Pipeline<number, string> = pipeline(
  map(fetchDoc, options),
  batch<Doc>({ maxSize: 32, maxWaitMs: 20 }),
  map(async (docs: Doc[]) => docs.map((d) => d.text)),
  flatten<string>(),
  filter((s: string) => s.length > 0),
);

export async function main(ids: number[]): Promise<string[]> {
  const controller = new AbortController();
  const flow: Flow<string> = rag.run(ids, {
    signal: controller.signal,
    order: "completion",
    bufferSize: 64,
  });
  flow.addEventListener("retrying", (e) => {
    const attempt: number = e.detail.attempt;
    void attempt;
  });
  flow.addEventListener("progress", (e) => {
    const stats: FlowStats = e.detail;
    console.log(formatProgress(stats, { total: ids.length }));
  });
  try {
    const out: string[] = [];
    for await (const text of flow) out.push(text.toUpperCase());
    return out;
  } catch (error) {
    if (error instanceof PipelineError) console.error(error.stage, error.cause);
    throw error;
  } finally {
    console.log(flow.failures.length, flow.stats().itemsOut);
  }
}

// A pipeline used as a stream transform.
export const upper: ReadableStream<string> = new ReadableStream<string>()
  .pipeThrough(pipeline(map((s: string) => s.toUpperCase())).transform());

export async function dispose(): Promise<void> {
  await using flow = pipeline(map((x: number) => x + 1)).run([1, 2, 3]);
  const results: number[] = await flow.collect();
  void results;
}
