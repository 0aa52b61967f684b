// W7's task module for piscina: the shared tasks, plus `stamp` returning its
// buffer with `Piscina.move()` (moved back, not copied).
import Piscina from "piscina";
import { stamp } from "./w7_tasks.mjs";

export { cpu, spin, tiny } from "./w7_tasks.mjs";

/** `stamp`, its buffer moved back. */
export function stampMoved(buffer) {
  return Piscina.move(stamp(buffer));
}
