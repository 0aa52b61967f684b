import { checkJson, type JsonCheck } from "../_json_check.ts";

/**
 * How `remote` and `serve` turn items and results into the strings stored in
 * Redis, and back. Both sides of a queue must use the same codec.
 *
 * `encode` runs in the process that has the value (the pipeline for an item,
 * the worker for a result) and must throw on a value it cannot encode: the
 * call then fails at once with a `TypeError` naming the item, never later in
 * the other process. A binary format should return base64 (or another string).
 *
 * @example A codec that keeps `Date`s
 * ```ts
 * import type { Codec } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * const dates: Codec = {
 *   encode: (value) =>
 *     JSON.stringify(value, function (key, v) {
 *       const raw = this[key];
 *       return raw instanceof Date ? { $date: raw.toISOString() } : v;
 *     }),
 *   decode: (text) =>
 *     JSON.parse(text, (_key, v) => v?.$date ? new Date(v.$date) : v),
 * };
 * const back = dates.decode(dates.encode({ at: new Date(0) })) as { at: Date };
 * assert.equal(back.at.getTime(), 0);
 * ```
 */
export interface Codec {
  /** Encodes a value; throws (a `TypeError` is best) when it cannot. */
  encode(value: unknown): string;
  /** Decodes what `encode` made. */
  decode(text: string): unknown;
}

/**
 * The default codec: JSON, checked before it is sent. A function, a symbol, a
 * `BigInt`, a cycle, a `Map` or a `Set` anywhere in the value is refused with a
 * `TypeError` naming its path (`item.user.callback is a function`) instead of
 * being dropped or mangled. Otherwise JSON's rules hold: `undefined` object
 * properties are left out, `undefined` in an array becomes `null`, `NaN` and
 * `Infinity` become `null`, a `Date` becomes its ISO string (its `toJSON()`).
 * A top-level `undefined` is kept (it decodes as `undefined`), so a worker
 * function may return nothing.
 *
 * @example
 * ```ts
 * import { jsonCodec } from "sluice/bullmq";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(jsonCodec.decode(jsonCodec.encode({ a: [1, "x"] })), {
 *   a: [1, "x"],
 * });
 * assert.equal(jsonCodec.decode(jsonCodec.encode(undefined)), undefined);
 * assert.throws(
 *   () => jsonCodec.encode({ user: { callback: () => {} } }),
 *   { name: "TypeError", message: "value.user.callback is a function" },
 * );
 * ```
 */
export const jsonCodec: Codec = {
  encode(value: unknown): string {
    if (value === undefined) return "";
    checkJson(value, "value", BULLMQ_JSON);
    return JSON.stringify(value);
  },
  decode(text: string): unknown {
    return text === "" ? undefined : JSON.parse(text);
  },
};

/**
 * Encodes an item or a result with `codec` for the job of `itemId`; a value
 * it cannot encode is a `TypeError` naming the item and the path
 * (`item 3 cannot be sent: item.user.callback is a function`). Internal to
 * `remote` and `serve` (not exported by the entry point).
 */
export function encodeValue(
  codec: Codec,
  value: unknown,
  root: "item" | "result",
  itemId: unknown,
): string {
  const what = root === "item"
    ? `item ${String(itemId)} cannot be sent`
    : `the result of item ${String(itemId)} cannot be sent back`;
  if (codec === jsonCodec) {
    if (value === undefined) return "";
    try {
      checkJson(value, root, BULLMQ_JSON);
    } catch (error) {
      throw new TypeError(`${what}: ${(error as Error).message}`);
    }
    return JSON.stringify(value);
  }
  let text: unknown;
  try {
    text = codec.encode(value);
  } catch (error) {
    throw new TypeError(
      `${what}: the codec refused it: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
  if (typeof text !== "string") {
    throw new TypeError(
      `${what}: the codec's encode() must return a string, not ${typeof text}`,
    );
  }
  return text;
}

/** JSON as this entry sends it: a codec is the way out of what JSON lacks. */
const BULLMQ_JSON: JsonCheck = { hint: ", or pass a codec", strict: false };
