// JSON, checked before anything is sent: items and results travel as JSON
// (queue messages with `contentType: "json"`, requests to the Durable Object),
// so a value JSON would drop or mangle is refused at once with a TypeError
// naming its path, in the isolate that has it.

/** Cloudflare's limit of one queue message, in bytes (128 KB). */
export const MAX_MESSAGE_BYTES = 128_000;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Throws a `TypeError` (`<what>: item.user.callback is a function`) unless
 * `value` survives JSON unchanged (`undefined` object properties aside).
 */
export function assertJson(value: unknown, root: string, what: string): void {
  try {
    check(value, root, []);
  } catch (error) {
    throw new TypeError(`${what}: ${(error as Error).message}`);
  }
}

function check(value: unknown, path: string, seen: object[]): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`${path} is ${value} (JSON sends it as null)`);
      }
      return;
    case "function":
      throw new TypeError(`${path} is a function`);
    case "symbol":
      throw new TypeError(`${path} is a symbol`);
    case "bigint":
      throw new TypeError(
        `${path} is a BigInt (JSON has none: convert it to a string or a number)`,
      );
  }
  if (value === null) return;
  const object = value as Record<string, unknown>;
  if (typeof object.toJSON === "function") {
    check((object.toJSON as (key: string) => unknown)(""), path, seen);
    return;
  }
  if (seen.includes(object)) {
    throw new TypeError(`${path} is a cycle (it contains itself)`);
  }
  if (object instanceof Map || object instanceof Set) {
    throw new TypeError(
      `${path} is a ${
        object instanceof Map ? "Map" : "Set"
      } (JSON would send it as {}: convert it first)`,
    );
  }
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    throw new TypeError(
      `${path} is binary data (JSON has none: encode it as base64 first)`,
    );
  }
  seen.push(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      check(object[i], `${path}[${i}]`, seen);
    }
  } else {
    for (const key of Object.keys(object)) {
      check(
        object[key],
        IDENTIFIER.test(key)
          ? `${path}.${key}`
          : `${path}[${JSON.stringify(key)}]`,
        seen,
      );
    }
  }
  seen.pop();
}

/** The UTF-8 length of `text`. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
