// What the randomized fault-injection suites (tests/fuzz/*_fuzz_test.ts)
// share: the run budget and replay options, a watchdog against hangs, and a
// count of the library's live timers.
//
// `npm test` runs each suite with its default number of runs (together about
// two minutes). A long campaign, or the replay of a failure:
//
//   npm run fuzz -- --runs 10000
//   npm run fuzz -- --only pipeline --seed 42 --path "3:1:0"
//
// Options (after `--`): --runs N (per suite), --seed S, --path P (fast-check's
// counterexample path, with --seed), --only pipeline,pool,batcher.
import fc from "fast-check";

/** The timer functions as they were before any suite patched them. */
export const realSetTimeout: typeof setTimeout = globalThis.setTimeout.bind(
  globalThis,
);
export const realClearTimeout: typeof clearTimeout = globalThis.clearTimeout
  .bind(globalThis);

interface Args {
  runs?: number;
  seed?: number;
  path?: string;
  only?: string[];
}

function parseArgs(argv: readonly string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split("=", 2);
    const value = () => inline ?? argv[++i];
    if (key === "--runs") out.runs = Number(value());
    else if (key === "--seed") out.seed = Number(value());
    else if (key === "--path") out.path = value();
    else if (key === "--only") out.only = value().split(",");
    else throw new TypeError(`unknown fuzz option ${argv[i]}`);
  }
  if (out.runs !== undefined && !(out.runs >= 1)) {
    throw new RangeError(`--runs must be a positive integer: got ${out.runs}`);
  }
  return out;
}

const args = parseArgs(Deno.args);

/** Whether `suite` runs in this invocation (`--only`). */
export function enabled(suite: string): boolean {
  return args.only === undefined || args.only.includes(suite);
}

/**
 * Checks `property` on `runs` generated cases (or `--runs`). On failure the
 * error names the seed, the shrunk counterexample and the command that
 * replays it.
 */
export async function fuzz<T>(
  suite: string,
  arbitrary: fc.Arbitrary<T>,
  property: (value: T) => Promise<void>,
  runs: number,
): Promise<void> {
  const numRuns = args.path !== undefined ? 1 : args.runs ?? runs;
  const result = await fc.check(
    fc.asyncProperty(arbitrary, async (value) => {
      await property(value);
    }),
    {
      numRuns,
      seed: args.seed,
      path: args.path,
      endOnFailure: false,
    },
  );
  if (!result.failed) {
    console.log(
      `${suite}: ${result.numRuns} runs passed (seed ${result.seed})`,
    );
    return;
  }
  const replay = `npm run fuzz -- --only ${suite} --seed ${result.seed}` +
    ` --path "${result.counterexamplePath}"`;
  throw new Error(
    `${suite}: a run failed after ${result.numRuns} runs ` +
      `(${result.numShrinks} shrinks).\n` +
      `counterexample: ${fc.stringify(result.counterexample)}\n` +
      `error: ${
        result.errorInstance instanceof Error
          ? result.errorInstance.stack
          : String(result.errorInstance)
      }\n` +
      `replay: ${replay}`,
  );
}

/**
 * Rejects when `promise` has not settled after `ms` (a real timer, not
 * counted as the library's): a run that hangs fails instead of stalling.
 */
export function settlesWithin<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = realSetTimeout(
      () => reject(new Error(`hang: ${what} did not settle in ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, watchdog]).finally(() =>
    realClearTimeout(timer)
  );
}

/** Resolves after `ms` on a real timer (a task's work, not the library's). */
export function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      realClearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = realSetTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Counts the timers the library has alive: while installed, the global
 * setTimeout/setInterval are wrapped (suites time their own work with
 * {@linkcode realSleep}, which is not counted).
 */
export class TimerWatch {
  readonly #live = new Set<unknown>();
  #saved: Record<string, unknown> | null = null;

  /** Timers set and neither cleared nor fired (intervals until cleared). */
  get live(): number {
    return this.#live.size;
  }

  install(): void {
    if (this.#saved !== null) return;
    const g = globalThis as unknown as Record<string, unknown>;
    const names = [
      "setTimeout",
      "clearTimeout",
      "setInterval",
      "clearInterval",
    ];
    this.#saved = Object.fromEntries(names.map((n) => [n, g[n]]));
    const saved = this.#saved as {
      setTimeout: typeof setTimeout;
      clearTimeout: typeof clearTimeout;
      setInterval: typeof setInterval;
      clearInterval: typeof clearInterval;
    };
    const live = this.#live;
    // The library passes no extra arguments to its timers.
    g.setTimeout = (fn: () => void, ms?: number) => {
      const id = saved.setTimeout(() => {
        live.delete(id);
        fn();
      }, ms);
      live.add(id);
      return id;
    };
    g.clearTimeout = (id: number | undefined) => {
      live.delete(id);
      saved.clearTimeout(id);
    };
    g.setInterval = (fn: () => void, ms?: number) => {
      const id = saved.setInterval(fn, ms);
      live.add(id);
      return id;
    };
    g.clearInterval = (id: number | undefined) => {
      live.delete(id);
      saved.clearInterval(id);
    };
  }

  uninstall(): void {
    if (this.#saved === null) return;
    Object.assign(globalThis, this.#saved);
    this.#saved = null;
    this.#live.clear();
  }
}

/** Throws `message` with `detail` when `ok` is false (oracle checks). */
export function check(ok: boolean, message: string, detail?: unknown): void {
  if (!ok) {
    throw new Error(
      detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`,
    );
  }
}
