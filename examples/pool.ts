// The Pool executor: `deno run -A examples/pool.ts`
//
// One pool of 4 slots serves three kinds of work at once: single calls with
// `submit()`, an urgent call with a priority, a stream of results with
// `map()`, and `asCompleted()` over a few promises. A flaky "API" fails some
// calls once; the pool retries them.
import { asCompleted, Pool, type TaskContext } from "../mod.ts";

/** A flaky "API": latency from the id, every fifth id fails its first call. */
function fakeApi() {
  const failedOnce = new Set<number>();
  return async (id: number, signal?: AbortSignal) => {
    await new Promise((r) => setTimeout(r, 2 + (id * 7) % 11));
    signal?.throwIfAborted();
    if (id % 5 === 0 && !failedOnce.has(id)) {
      failedOnce.add(id);
      throw new Error(`503 for ${id}`);
    }
    return { id, name: `user ${id}` };
  };
}

export async function main(log: (line: string) => void = () => {}): Promise<{
  single: string;
  urgentFirst: boolean;
  mapped: number[];
  completed: number;
  attempts: number;
}> {
  const api = fakeApi();
  let attempts = 0;
  const call = (id: number, ctx: TaskContext) => {
    attempts++;
    return api(id, ctx.signal);
  };

  // `await using`: the pool drains and closes at the end of the scope.
  await using pool = new Pool({
    concurrency: 4,
    retry: { attempts: 3, delayMs: 5 },
    timeoutMs: 1_000,
  });

  // submit(fn, ...args): starts at once, a promise of the result.
  const single = (await pool.submit(api, 1)).name;
  log(`submit: ${single}`);

  // Fill the slots, then queue a low-priority batch and one urgent call.
  const order: string[] = [];
  const batch = [11, 12, 13, 14, 16, 17].map((id) =>
    pool.run((ctx) => {
      order.push(`batch ${id}`);
      return call(id, ctx);
    })
  );
  const urgent = pool.run((ctx) => {
    order.push("urgent");
    return call(99, ctx);
  }, { priority: 10 });
  await Promise.all([...batch, urgent]);
  // Four batch calls took the free slots; the urgent one went first of the
  // queued ones.
  const urgentFirst = order[4] === "urgent";
  log(`start order: ${order.join(", ")}`);

  // map(): results in input order, read lazily, retries included.
  const mapped: number[] = [];
  for await (const user of pool.map(call, [20, 21, 22, 23, 24, 25])) {
    mapped.push(user.id);
  }
  log(`map: ${mapped.join(", ")}`);

  // asCompleted(): whatever finishes first comes first.
  let completed = 0;
  const promises = [30, 31, 32, 33].map((id) => pool.submit(api, id));
  for await (const user of asCompleted(promises)) {
    completed++;
    log(`asCompleted: ${user.name}`);
  }

  await pool.onIdle();
  log(`attempts through run()/map(): ${attempts}`);
  return { single, urgentFirst, mapped, completed, attempts };
}

if (import.meta.main) await main(console.log);
