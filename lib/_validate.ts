// Call-site validation shared by every public entry point. One message shape:
// `'concurrency' must be a positive integer or Infinity: current value is 0`.

/** Describes a bad value in an error message. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/** Throws unless `value` is an integer `>= min` (or `Infinity` when allowed). */
export function assertInteger(
  name: string,
  value: unknown,
  min: number,
  allowInfinity = false,
): asserts value is number {
  const what = `${min === 1 ? "a positive" : `an`} integer${
    min === 1 ? "" : ` >= ${min}`
  }${allowInfinity ? " or Infinity" : ""}`;
  if (typeof value !== "number") {
    throw new TypeError(
      `'${name}' must be ${what}: current value is ${show(value)}`,
    );
  }
  const ok = (allowInfinity && value === Infinity) ||
    (Number.isInteger(value) && value >= min);
  if (!ok) {
    throw new RangeError(
      `'${name}' must be ${what}: current value is ${value}`,
    );
  }
}

/**
 * The longest delay a timer honours (ms): `setTimeout` fires a longer one
 * after about 1 ms, so longer durations are refused, never shortened.
 */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Throws unless `value` is a duration in ms: a number from 0 (above 0 when
 * `positive`) to {@linkcode MAX_DELAY_MS}, or `Infinity` when `infinity`
 * (meaning "none") is allowed.
 */
export function assertDuration(
  name: string,
  value: unknown,
  { positive = false, infinity = false } = {},
): asserts value is number {
  const what = `a number of ms ${
    positive ? "> 0" : ">= 0"
  } and <= ${MAX_DELAY_MS}${infinity ? " (or Infinity for none)" : ""}`;
  if (typeof value !== "number") {
    throw new TypeError(
      `'${name}' must be ${what}: current value is ${show(value)}`,
    );
  }
  const ok = (infinity && value === Infinity) ||
    (value >= 0 && value <= MAX_DELAY_MS && !(positive && value === 0));
  if (!ok) {
    throw new RangeError(
      `'${name}' must be ${what}: current value is ${value}`,
    );
  }
}

/** A validated `timeoutMs`: undefined (or Infinity) is no deadline. */
export function readTimeout(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  assertDuration("timeoutMs", value, { positive: true, infinity: true });
  return value === Infinity ? undefined : value;
}

/** Throws a `TypeError` unless `value` is a function. */
export function assertFunction(
  name: string,
  value: unknown,
): asserts value is (...args: never[]) => unknown {
  if (typeof value !== "function") {
    throw new TypeError(
      `'${name}' must be a function: current value is ${show(value)}`,
    );
  }
}

/** Throws a `TypeError` unless `value` is a boolean. */
export function assertBoolean(
  name: string,
  value: unknown,
): asserts value is boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(
      `'${name}' must be a boolean: current value is ${show(value)}`,
    );
  }
}

/**
 * Throws a `TypeError` unless `value` is `undefined` or an `AbortSignal`
 * (by shape, so a signal of another realm passes too).
 */
export function assertSignal(
  value: unknown,
  name = "signal",
): asserts value is AbortSignal | undefined {
  if (
    value !== undefined &&
    (typeof value !== "object" || value === null ||
      typeof (value as AbortSignal).addEventListener !== "function" ||
      typeof (value as AbortSignal).aborted !== "boolean")
  ) {
    throw new TypeError(
      `'${name}' must be an AbortSignal: current value is ${show(value)}`,
    );
  }
}

/** Throws a `TypeError` unless `value` is one of `allowed`. */
export function assertOneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (!allowed.includes(value as T)) {
    throw new TypeError(
      `'${name}' must be ${
        allowed.map((a) => JSON.stringify(a)).join(" or ")
      }: current value is ${show(value)}`,
    );
  }
}

/**
 * Throws a `TypeError` unless `value` is `undefined` or a plain options
 * object; with `known`, also when it has an own key not in `known` (a
 * misspelling is never accepted silently):
 * `'concurency' is not an option of map(): did you mean 'concurrency'?`.
 *
 * @param name The option's name (`"options"`, `"retry"`, …).
 * @param value What the caller passed.
 * @param where What takes it, for the message (`"map()"`, `"retry"`).
 * @param known Every option name it takes.
 */
export function assertOptions(
  name: string,
  value: unknown,
  where?: string,
  known?: readonly string[],
): void {
  if (value === undefined) return;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `'${name}' must be an object: current value is ${show(value)}`,
    );
  }
  if (known === undefined) return;
  for (const key in value) {
    if (!known.includes(key) && Object.hasOwn(value, key)) {
      throw unknownOption(key, where!, known);
    }
  }
}

/** The error for an unknown option `key`, naming the closest known one. */
function unknownOption(
  key: string,
  where: string,
  known: readonly string[],
): TypeError {
  let best = "";
  let bestDistance = Infinity;
  for (const name of known) {
    const d = distance(key.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  // A suggestion only when it is plausibly the same word.
  const close = bestDistance <= Math.max(2, Math.floor(key.length / 3));
  return new TypeError(
    `'${key}' is not an option of ${where}: ${
      close
        ? `did you mean '${best}'?`
        : `its options are ${known.map((k) => `'${k}'`).join(", ")}`
    }`,
  );
}

/** Levenshtein distance (option names are short). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}

/** Throws a `TypeError` unless `value` is `undefined` or a non-empty string. */
export function assertName(value: unknown): void {
  if (value !== undefined && (typeof value !== "string" || value === "")) {
    throw new TypeError(
      `'name' must be a non-empty string: current value is ${show(value)}`,
    );
  }
}

/**
 * Throws a `TypeError` unless `value` is `undefined`, a non-empty string or a
 * function (a remote stage's `runId`).
 */
export function assertStringOrFunction(name: string, value: unknown): void {
  if (
    value !== undefined && typeof value !== "function" &&
    (typeof value !== "string" || value === "")
  ) {
    throw new TypeError(
      `'${name}' must be a non-empty string or a function: current value is ${
        show(value)
      }`,
    );
  }
}
