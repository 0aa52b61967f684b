// Typed tasks for the ThreadPool tests on Deno and Bun (TypeScript modules
// run as is there): `ThreadPool<typeof import("./tasks.ts")>` types each
// task's name, argument and result.
import { transfer } from "../../threads.ts";

/** The square of `n`. */
export function square(n: number): number {
  return n * n;
}

/** CPU work: `rounds` of a string hash, the same as tasks.mjs's `hash`. */
export function hash(input: { text: string; rounds?: number }): string {
  const { text, rounds = 1000 } = input;
  let h = 2166136261;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619) >>> 0;
    }
  }
  return `${text}:${h.toString(16)}`;
}

/** The words of `text`, after `ms` of waiting. */
export async function words(
  input: { text: string; ms?: number },
): Promise<string[]> {
  await new Promise((resolve) => setTimeout(resolve, input.ms ?? 0));
  return input.text.split(" ");
}

/** `size` bytes of `fill`, moved back (not copied) with `transfer()`. */
export function fill(input: { size: number; fill: number }): Uint8Array {
  const bytes = new Uint8Array(input.size).fill(input.fill);
  return transfer(bytes, [bytes.buffer]);
}

/** Not a task: only functions are. */
export const VERSION = "1";
