// The one check that a value survives JSON unchanged, before it is sent to
// another process (sluice/bullmq's JSON codec, sluice/cloudflare's messages):
// a value JSON would drop or mangle is refused at once with a TypeError
// naming its path (`item.user.callback is a function`).

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** How strict the check is, and what its messages suggest. */
export interface JsonCheck {
  /** Appended to the BigInt and Map/Set advice (", or pass a codec"). */
  readonly hint: string;
  /** Also refuse non-finite numbers (JSON sends null) and binary data. */
  readonly strict: boolean;
}

/**
 * Throws a `TypeError` naming the first part of `value` (at `path`) that
 * JSON cannot carry faithfully (`undefined` object properties aside).
 */
export function checkJson(
  value: unknown,
  path: string,
  check: JsonCheck,
  seen: object[] = [],
): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (check.strict && !Number.isFinite(value)) {
        throw new TypeError(`${path} is ${value} (JSON sends it as null)`);
      }
      return;
    case "function":
      throw new TypeError(`${path} is a function`);
    case "symbol":
      throw new TypeError(`${path} is a symbol`);
    case "bigint":
      throw new TypeError(
        `${path} is a BigInt (JSON has none: convert it to a string or a number${check.hint})`,
      );
  }
  if (value === null) return;
  const object = value as Record<string, unknown>;
  if (typeof object.toJSON === "function") {
    checkJson(
      (object.toJSON as (key: string) => unknown)(""),
      path,
      check,
      seen,
    );
    return;
  }
  if (seen.includes(object)) {
    throw new TypeError(`${path} is a cycle (it contains itself)`);
  }
  if (object instanceof Map || object instanceof Set) {
    throw new TypeError(
      `${path} is a ${
        object instanceof Map ? "Map" : "Set"
      } (JSON would send it as {}: convert it${check.hint || " first"})`,
    );
  }
  if (
    check.strict &&
    (ArrayBuffer.isView(object) || object instanceof ArrayBuffer)
  ) {
    throw new TypeError(
      `${path} is binary data (JSON has none: encode it as base64 first)`,
    );
  }
  seen.push(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      checkJson(object[i], `${path}[${i}]`, check, seen);
    }
  } else {
    for (const key of Object.keys(object)) {
      const at = IDENTIFIER.test(key)
        ? `${path}.${key}`
        : `${path}[${JSON.stringify(key)}]`;
      checkJson(object[key], at, check, seen);
    }
  }
  seen.pop();
}
