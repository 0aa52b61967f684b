// The task module of `examples/threads.ts`: a plain module whose exported
// functions run inside a ThreadPool's threads (each called with one argument).
// It imports nothing, so it loads quickly in every thread.

/** A fetched document. */
export interface Doc {
  id: number;
  text: string;
}

/** A document with its score. */
export interface Scored extends Doc {
  score: number;
}

/**
 * CPU work: about 40 ms of hashing (36 million rounds) that gives the document
 * a score from 0 to 999. Synchronous and deterministic: the same document
 * always gets the same score, inline or on a thread.
 */
export function score(doc: Doc): Scored {
  let h = 2166136261;
  for (let i = 0; i < doc.text.length; i++) {
    h = Math.imul(h ^ doc.text.charCodeAt(i), 16777619);
  }
  for (let i = 0; i < 36_000_000; i++) {
    h = Math.imul(h ^ (i & 0xff), 16777619);
  }
  return { ...doc, score: (h >>> 0) % 1000 };
}
