// Batch tasks for tests/threads_batcher_test.ts: a Batcher's synchronous
// batch function, run on a ThreadPool. Plain JavaScript, one argument per
// task (the batch's items), one result per item, in order.

/**
 * A fake embedding: `[length, first char code, hash]` per text. Throws an
 * `EmbedError` for a batch holding "boom"; an empty text gets an `Error` of
 * its own (that caller alone fails).
 *
 * @param {string[]} texts
 * @returns {(number[] | Error)[]}
 */
export function embedBatch(texts) {
  if (texts.includes("boom")) {
    const error = new Error(
      `cannot embed a batch of ${texts.length} with "boom"`,
    );
    error.name = "EmbedError";
    throw error;
  }
  return texts.map((text) =>
    text === "" ? new Error("cannot embed an empty text") : vector(text)
  );
}

/**
 * One result too few: the Batcher rejects every caller of the batch.
 *
 * @param {string[]} texts
 * @returns {number[][]}
 */
export function embedShort(texts) {
  return texts.slice(1).map(vector);
}

/**
 * The vector of one text (also used by the test to check results).
 *
 * @param {string} text
 * @returns {number[]}
 */
export function vector(text) {
  let h = 2166136261;
  for (let r = 0; r < 1000; r++) {
    for (let i = 0; i < text.length; i++) {
      h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    }
  }
  return [text.length, text.charCodeAt(0), h >>> 0];
}
