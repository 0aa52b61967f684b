// Tiny assertion and timing helpers for the cross-runtime cases. Web-standard
// only (no node:assert, no Deno or Node APIs), so the cases run unchanged in
// Deno, Node, Bun, workerd and browsers. Every timer here is cleared or
// awaited, so Deno's leak sanitizers stay quiet.

/** The library under test: mod.ts in Deno, the built npm package elsewhere. */
export type Lib = typeof import("../../mod.ts");

/** One shared case, written once and run on every runtime. */
export interface Case {
  /** `"<symbol>() <behaviour>"`, unique across all case files. */
  name: string;
  /** Runs the case against `lib`; rejects when it fails. */
  run(lib: Lib): Promise<void>;
}

/** The outcome of one case, as runtimes report it back to the test runner. */
export interface CaseResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

/** Throws `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** A stable text form of a value for messages and structural comparison. */
export function show(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "number" && !Number.isFinite(value)) {
    return String(value);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Throws unless `actual` and `expected` are equal (`Object.is` for primitives, structure for plain data). */
export function equal(actual: unknown, expected: unknown, message = ""): void {
  const same = (typeof actual === "object" && actual !== null) ||
      (typeof expected === "object" && expected !== null)
    ? show(actual) === show(expected)
    : Object.is(actual, expected);
  if (!same) {
    throw new Error(
      `${message ? message + ": " : ""}expected ${show(expected)}, got ${
        show(actual)
      }`,
    );
  }
}

/** Awaits `promise`, throws if it resolves, and returns the rejection reason. */
export async function rejects(
  promise: Promise<unknown>,
  message: string,
): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`expected a rejection: ${message}`);
}

/** Calls `fn`, throws if it returns, and returns what it threw. */
export function throws(fn: () => unknown, message: string): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error(`expected a throw: ${message}`);
}

/** Resolves after `ms` milliseconds, or at once (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** A promise with its `resolve` at hand. */
export interface Gate<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

/** Makes a {@linkcode Gate}. */
export function gate<T = void>(): Gate<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => resolve = res);
  return { promise, resolve };
}

/**
 * Races `promise` against a timer that rejects after `ms`; the timer is
 * cleared either way. Turns a would-be hang into a failure.
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every few milliseconds; throws after `ms`. */
export async function until(
  condition: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  for (let waited = 0; !condition(); waited += 2) {
    if (waited > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(2);
  }
}

/** Runs one case with a hang guard and reports its outcome (never rejects). */
export async function runCase(
  c: Case,
  lib: Lib,
  timeoutMs = 10_000,
): Promise<CaseResult> {
  const t0 = Date.now();
  try {
    await within(c.run(lib), timeoutMs, c.name);
    return { name: c.name, ok: true, ms: Date.now() - t0 };
  } catch (error) {
    const text = error instanceof Error
      ? `${error.name}: ${error.message}${
        error.stack ? "\n" + error.stack : ""
      }`
      : show(error);
    return { name: c.name, ok: false, error: text, ms: Date.now() - t0 };
  }
}
