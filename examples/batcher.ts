// Request coalescing: `deno run -A examples/batcher.ts`
//
// Many callers ask for one embedding each; a fake model serves whole batches
// (a fixed cost per call plus a little per text). The Batcher groups the
// callers' texts into batches of up to 16, waits at most 5 ms for a batch to
// fill, runs 2 batches at once, and hands each caller its own vector.
import { type BatchContext, Batcher, type BatcherStats } from "../mod.ts";

/** A fake embedding model: 20 ms per call + 0.5 ms per text; "" is refused. */
async function embed(
  texts: string[],
  ctx: BatchContext,
): Promise<(number[] | Error)[]> {
  await new Promise((r) => setTimeout(r, 20 + texts.length / 2));
  ctx.signal.throwIfAborted();
  return texts.map((t) =>
    t === ""
      ? new Error("cannot embed an empty text")
      : [t.length, t.charCodeAt(0)]
  );
}

export async function main(): Promise<{
  vectors: number;
  refused: string[];
  aborted: number;
  stats: BatcherStats;
}> {
  await using batcher = new Batcher(embed, {
    maxSize: 16,
    maxWaitMs: 5,
    concurrency: 2,
  });

  // 40 requests in 4 waves, 3 ms apart, one of them an empty text.
  const texts = Array.from(
    { length: 40 },
    (_, i) => i === 17 ? "" : `doc ${i}`,
  );
  const requests: Promise<number[]>[] = [];
  for (let wave = 0; wave < 4; wave++) {
    for (const text of texts.slice(wave * 10, wave * 10 + 10)) {
      requests.push(batcher.process(text));
    }
    await new Promise((r) => setTimeout(r, 3));
  }

  // A caller that gives up leaves its batch without disturbing the others.
  const controller = new AbortController();
  const late = batcher.process("never mind", { signal: controller.signal });
  controller.abort(new Error("caller left"));

  const settled = await Promise.allSettled([...requests, late]);
  const refused = settled.flatMap((s) =>
    s.status === "rejected" ? [String((s.reason as Error).message)] : []
  );
  return {
    vectors: settled.filter((s) => s.status === "fulfilled").length,
    refused,
    aborted: refused.filter((m) => m === "caller left").length,
    stats: batcher.stats(),
  };
}

if (import.meta.main) {
  const { vectors, refused, stats } = await main();
  console.log(`${vectors} vectors; refused: ${refused.join("; ")}`);
  console.log(
    `${stats.batchesSent} batches, mean size ${
      stats.meanBatchSize.toFixed(1)
    }, ` +
      `queue wait p50 ${stats.queueWait.p50.toFixed(1)} ms, ` +
      `p95 ${stats.queueWait.p95.toFixed(1)} ms`,
  );
}
