// Retries, timeouts and error policies: `deno run -A examples/retries_and_errors.ts`
import { map, pipeline, PipelineError, type TaskContext } from "../mod.ts";

/** A flaky "API": every third call of an id fails the first time. */
function flakyApi() {
  const failedOnce = new Set<number>();
  return async (id: number, ctx: TaskContext) => {
    await new Promise((r) => setTimeout(r, 5));
    ctx.signal.throwIfAborted();
    if (id % 3 === 0 && !failedOnce.has(id)) {
      failedOnce.add(id);
      throw new Error(`503 for ${id}`);
    }
    if (id === 7) throw new Error("404: no such item"); // fails every time
    return { id, name: `item ${id}` };
  };
}

export async function main(): Promise<{
  ok: number;
  skipped: number[];
  substituted: unknown[];
  failedWith: string;
}> {
  // Retry up to 3 tries in all, then skip what still fails.
  const fetchAll = pipeline(
    map(flakyApi(), {
      concurrency: 4,
      timeoutMs: 1_000,
      retry: {
        attempts: 3,
        delayMs: 10,
        retryIf: (e) => !String(e).includes("404"),
      },
      onError: "skip",
    }),
  );
  const flow = fetchAll.run([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const items = await flow.collect();
  const skipped = flow.failures.map((f) => f.item as number);

  // A handler decides per error: substitute a value, skip, or fail.
  const withFallback = pipeline(
    map(flakyApi(), {
      retry: { attempts: 2, delayMs: 10 },
      onError: (error) =>
        String(error).includes("404") ? { value: null } : "fail",
    }),
  );
  const substituted = await withFallback.run([6, 7, 8]).collect();

  // The default, "fail": the run rejects with a PipelineError.
  let failedWith = "";
  try {
    await pipeline(map(flakyApi(), { name: "fetch" })).run([1, 7]).collect();
  } catch (error) {
    if (error instanceof PipelineError) {
      failedWith = `${error.stage} #${error.index}: ${
        (error.cause as Error).message
      }`;
    }
  }
  return { ok: items.length, skipped, substituted, failedWith };
}

if (import.meta.main) console.log(await main());
