// W7's task module for tinypool: the shared tasks, plus `stamp` returning its
// buffer with `Tinypool.move()` (moved back, not copied).
import Tinypool from "tinypool";
import { stamp } from "./w7_tasks.mjs";

export { cpu, spin, tiny } from "./w7_tasks.mjs";

/** `stamp`, its buffer moved back. */
export function stampMoved(buffer) {
  return Tinypool.move(stamp(buffer));
}
