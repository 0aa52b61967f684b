// W7's task module for sluice's ThreadPool: the shared tasks, plus `stamp`
// returning its buffer with sluice's `transfer()` (moved back, not copied).
// The threads module differs per runtime (the npm build or a bundle on Node,
// threads.ts on Deno), so its URL comes in this module's `?threads=` query.
import { stamp } from "./w7_tasks.mjs";

export { cpu, spin, stamp, tiny } from "./w7_tasks.mjs";

const threadsUrl = new URL(import.meta.url).searchParams.get("threads");
const { transfer } = await import(threadsUrl);

/** `stamp`, its buffer moved back. */
export function stampMoved(buffer) {
  return transfer(stamp(buffer), [buffer]);
}
