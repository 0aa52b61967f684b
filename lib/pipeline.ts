import { Flow, type RunOptions } from "./flow.ts";
import { specOf, type Stage } from "./stage.ts";
import type { Source } from "./types.ts";

/** A `{ writable, readable }` pair, for `ReadableStream.prototype.pipeThrough`. */
export interface TransformPair<I, O> {
  /** Write the items here. */
  readonly writable: WritableStream<I>;
  /** Read the results here. */
  readonly readable: ReadableStream<O>;
}

/**
 * A reusable chain of stages from items of type `I` to results of type `O`.
 * Build it with {@linkcode pipeline}; every `run()` is independent.
 *
 * @example
 * ```ts
 * import { map, Pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const p = new Pipeline<number, number>([map((x: number) => x + 1)]);
 * assert.deepEqual(p.names, ["map#1"]);
 * assert.deepEqual(await p.run([1]).collect(), [2]);
 * ```
 */
export class Pipeline<I, O> {
  /** The stages, in order. */
  readonly stages: readonly Stage<never, unknown>[];
  /** The stage names: the `name` option, or `<kind>#<position>` from 1. */
  readonly names: readonly string[];

  /**
   * Makes a pipeline from a list of stages.
   *
   * @param stages The stages, in order (their types are not checked here: use
   * {@linkcode pipeline} for inference).
   * @throws {TypeError} When a stage is not one made by `map`, `filter`,
   * `batch` or `flatten`.
   */
  constructor(stages: readonly Stage<never, unknown>[]) {
    stages.forEach((stage, i) => {
      if (specOf(stage) === undefined) {
        throw new TypeError(
          `'stages[${i}]' must be a stage made by map(), filter(), batch() or flatten(): current value is ${
            stage === null ? "null" : typeof stage
          }`,
        );
      }
    });
    this.stages = Object.freeze([...stages]);
    this.names = Object.freeze(
      stages.map((s, i) => s.name ?? `${s.kind}#${i + 1}`),
    );
  }

  /**
   * Starts one run over `source`, pulled lazily (an endless source works).
   * Returns at once; nothing runs before the caller's synchronous code has
   * finished.
   *
   * @param source An `Iterable`, `AsyncIterable` or `ReadableStream`.
   * @param options Order, signal, ids, read-ahead budget, context.
   * @returns The run: an async iterable of results.
   * @throws {TypeError} When `source` is not readable or an option has the wrong type.
   * @throws {RangeError} When `bufferSize` is not an integer `>= 0`.
   *
   * @example Completion order
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
   * const p = pipeline(map(async (ms: number) => {
   *   await sleep(ms);
   *   return ms;
   * }, { concurrency: 3 }));
   * const out = await p.run([60, 5, 30], { order: "completion" }).collect();
   * assert.deepEqual(out, [5, 30, 60]);
   * ```
   */
  run(source: Source<I>, options?: RunOptions<I>): Flow<O> {
    return new Flow<O>(
      this as unknown as Pipeline<unknown, O>,
      source,
      options as RunOptions<unknown>,
    );
  }

  /**
   * A fresh `{ writable, readable }` pair running this pipeline: what is
   * written goes in as the source, results come out of `readable`. Cancelling
   * `readable` cancels the run; aborting `writable` fails it.
   *
   * @param options Run options, as for `run()`.
   * @returns The pair, for `stream.pipeThrough(p.transform())`.
   *
   * @example
   * ```ts
   * import { map, pipeline } from "sluice";
   * import assert from "node:assert/strict";
   *
   * const doubled = ReadableStream.from([1, 2, 3])
   *   .pipeThrough(pipeline(map((x: number) => x * 2)).transform());
   * const out: number[] = [];
   * for await (const x of doubled) out.push(x);
   * assert.deepEqual(out, [2, 4, 6]);
   * ```
   */
  transform(options?: RunOptions<I>): TransformPair<I, O> {
    const { readable, writable } = new TransformStream<I, I>();
    return { writable, readable: this.run(readable, options).readable };
  }
}

/**
 * Chains stages into a reusable {@linkcode Pipeline}, inferring the item types
 * through them.
 *
 * @param stages The stages, in order.
 * @returns The pipeline.
 * @throws {TypeError} When an argument is not a stage.
 *
 * @example A RAG-shaped pipeline
 * ```ts
 * import { batch, flatten, map, pipeline } from "sluice";
 * import assert from "node:assert/strict";
 *
 * const rag = pipeline(
 *   map(async (q: string) => ({ q, doc: `doc:${q}` }), { concurrency: 10 }),
 *   batch({ maxSize: 32, maxWaitMs: 20 }),
 *   map(async (docs: { q: string; doc: string }[]) => docs.reverse().reverse()),
 *   flatten(),
 *   map((d: { q: string; doc: string }) => d.doc.toUpperCase()),
 * );
 * assert.deepEqual(await rag.run(["a", "b"]).collect(), ["DOC:A", "DOC:B"]);
 * ```
 */
export function pipeline<T>(): Pipeline<T, T>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A>(
  s1: Stage<I, A>,
): Pipeline<I, A>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
): Pipeline<I, B>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
): Pipeline<I, C>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
): Pipeline<I, D>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
): Pipeline<I, E>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
  s6: Stage<E, F>,
): Pipeline<I, F>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
  s6: Stage<E, F>,
  s7: Stage<F, G>,
): Pipeline<I, G>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
  s6: Stage<E, F>,
  s7: Stage<F, G>,
  s8: Stage<G, H>,
): Pipeline<I, H>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H, J>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
  s6: Stage<E, F>,
  s7: Stage<F, G>,
  s8: Stage<G, H>,
  s9: Stage<H, J>,
): Pipeline<I, J>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H, J, K>(
  s1: Stage<I, A>,
  s2: Stage<A, B>,
  s3: Stage<B, C>,
  s4: Stage<C, D>,
  s5: Stage<D, E>,
  s6: Stage<E, F>,
  s7: Stage<F, G>,
  s8: Stage<G, H>,
  s9: Stage<H, J>,
  s10: Stage<J, K>,
): Pipeline<I, K>;
/**
 * More than ten stages: the chain is not type-checked (nest pipelines or split
 * the chain to keep inference).
 */
export function pipeline(
  ...stages: [
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    Stage<never, unknown>,
    ...Stage<never, unknown>[],
  ]
): Pipeline<unknown, unknown>;
export function pipeline(
  ...stages: Stage<never, unknown>[]
): Pipeline<unknown, unknown> {
  return new Pipeline(stages);
}
