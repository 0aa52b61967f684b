// JSON, checked before anything is sent: items and results travel as JSON
// (queue messages with `contentType: "json"`, requests to the Durable Object),
// so a value JSON would drop or mangle is refused at once with a TypeError
// naming its path, in the isolate that has it.

import { checkJson } from "../_json_check.ts";

/** Cloudflare's limit of one queue message, in bytes (128 KB). */
export const MAX_MESSAGE_BYTES = 128_000;

/**
 * Throws a `TypeError` (`<what>: item.user.callback is a function`) unless
 * `value` survives JSON unchanged (`undefined` object properties aside).
 */
export function assertJson(value: unknown, root: string, what: string): void {
  try {
    checkJson(value, root, { hint: "", strict: true });
  } catch (error) {
    throw new TypeError(`${what}: ${(error as Error).message}`);
  }
}

/** The UTF-8 length of `text`. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
