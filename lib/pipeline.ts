import { Flow, type RunOptions } from "./flow.ts";
import { specOf, type Stage } from "./stage.ts";
import type { Source } from "./types.ts";

/**
 * What {@linkcode pipeline} chains: a stage, or a whole pipeline, which
 * stands for its stages in order.
 */
export type Part<I, O> = Stage<I, O> | Pipeline<I, O>;

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
   * Makes a pipeline from a list of stages and pipelines (a pipeline stands
   * for its stages, in order).
   *
   * Stage names are unique: a stage without a `name` is `<kind>#<position>`
   * (its position in this pipeline, from 1), and a name already taken by an
   * earlier stage gets `#<position>` appended (a pipeline used twice, or two
   * stages given the same name).
   *
   * @param parts The stages and pipelines, in order (their types are not
   * checked here: use {@linkcode pipeline} for inference).
   * @throws {TypeError} When a part is not a stage made by `map`, `filter`,
   * `batch` or `flatten`, nor a `Pipeline`.
   */
  constructor(
    parts: readonly (Stage<never, unknown> | Pipeline<never, unknown>)[],
  ) {
    const stages: Stage<never, unknown>[] = [];
    parts.forEach((part, i) => {
      if (part instanceof Pipeline) stages.push(...part.stages);
      else if (specOf(part) !== undefined) stages.push(part);
      else {
        throw new TypeError(
          `'stages[${i}]' must be a stage made by map(), filter(), batch() or flatten(), or a Pipeline: current value is ${
            part === null ? "null" : typeof part
          }`,
        );
      }
    });
    const taken = new Set<string>();
    this.stages = Object.freeze(stages);
    this.names = Object.freeze(stages.map((st, i) => {
      let name = st.name ?? `${st.kind}#${i + 1}`;
      if (taken.has(name)) name = `${name}#${i + 1}`;
      taken.add(name);
      return name;
    }));
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
  s1: Part<I, A>,
): Pipeline<I, A>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B>(
  s1: Part<I, A>,
  s2: Part<A, B>,
): Pipeline<I, B>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
): Pipeline<I, C>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
): Pipeline<I, D>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
): Pipeline<I, E>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
  s6: Part<E, F>,
): Pipeline<I, F>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
  s6: Part<E, F>,
  s7: Part<F, G>,
): Pipeline<I, G>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
  s6: Part<E, F>,
  s7: Part<F, G>,
  s8: Part<G, H>,
): Pipeline<I, H>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H, J>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
  s6: Part<E, F>,
  s7: Part<F, G>,
  s8: Part<G, H>,
  s9: Part<H, J>,
): Pipeline<I, J>;
/** Chains stages into a {@linkcode Pipeline}, inferring types (see the first overload). */
export function pipeline<I, A, B, C, D, E, F, G, H, J, K>(
  s1: Part<I, A>,
  s2: Part<A, B>,
  s3: Part<B, C>,
  s4: Part<C, D>,
  s5: Part<D, E>,
  s6: Part<E, F>,
  s7: Part<F, G>,
  s8: Part<G, H>,
  s9: Part<H, J>,
  s10: Part<J, K>,
): Pipeline<I, K>;
/**
 * More than ten stages: the chain is not type-checked (nest pipelines or split
 * the chain to keep inference).
 */
export function pipeline(
  ...stages: [
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    Part<never, unknown>,
    ...Part<never, unknown>[],
  ]
): Pipeline<unknown, unknown>;
export function pipeline(
  ...parts: Part<never, unknown>[]
): Pipeline<unknown, unknown> {
  return new Pipeline(parts);
}
