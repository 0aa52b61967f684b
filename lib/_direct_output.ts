/**
 * `collect()` of a run through map stages only: each result is written
 * straight to its place in the output when it is done (input order: its
 * index; completion order: the next free place), so results neither wait in
 * the order list nor count in the read-ahead budget (W1 `collect()`:
 * bench/README.md, "History of the hot path").
 *
 * @module
 */

/** The output of one `collect()` whose results are placed directly. */
export class DirectOutput {
  readonly #into: unknown[];
  readonly #ordered: boolean;
  /** Input order: the indices of skipped items, gaps closed at the end. */
  readonly #gaps: number[] = [];

  /**
   * @param into The array `collect()` resolves with.
   * @param ordered Input order (place by index) or completion order.
   * @param length The output's length when known (an array source's):
   *   reserved at once.
   */
  constructor(into: unknown[], ordered: boolean, length: number | undefined) {
    this.#into = into;
    this.#ordered = ordered;
    if (length !== undefined) into.length = length;
  }

  /** Writes a result: at `index` in input order, else at `results`. */
  place(value: unknown, index: number, results: number): void {
    const into = this.#into;
    const at = this.#ordered ? index : results;
    if (at >= into.length) into.length = Math.max(at + 1, 2 * into.length, 16);
    into[at] = value;
  }

  /** The item at `index` left without a result (skipped or filtered). */
  skip(index: number): void {
    if (this.#ordered) this.#gaps.push(index);
  }

  /** At the end: closes the gaps of skipped items and trims the rest. */
  close(results: number): void {
    const into = this.#into;
    const gaps = this.#gaps;
    if (gaps.length > 0) {
      gaps.sort((a, b) => a - b);
      const end = results + gaps.length;
      let to = gaps[0];
      for (let from = to, g = 0; from < end; from++) {
        if (g < gaps.length && gaps[g] === from) g++;
        else into[to++] = into[from];
      }
    }
    into.length = results;
  }
}
