// Hand-written references: what a user writes without a library.

/**
 * An ordered window: keeps up to `c` calls in flight and yields their results
 * in input order (the head is awaited first: head-of-line blocking).
 * Works on sync and async iterables.
 */
export async function* orderedWindow(iterable, fn, c) {
  const window = [];
  if (!iterable[Symbol.asyncIterator]) {
    const it = iterable[Symbol.iterator]();
    let r = it.next();
    for (;;) {
      while (!r.done && window.length < c) {
        window.push(fn(r.value));
        r = it.next();
      }
      if (window.length === 0) return;
      yield await window.shift();
    }
  }
  const it = iterable[Symbol.asyncIterator]();
  let done = false;
  for (;;) {
    while (!done && window.length < c) {
      const r = await it.next();
      if (r.done) done = true;
      else window.push(fn(r.value));
    }
    if (window.length === 0) return;
    yield await window.shift();
  }
}

/** Consecutive arrays of `size` (the last may be shorter), sync or async. */
export async function* batches(iterable, size) {
  let b = [];
  if (!iterable[Symbol.asyncIterator]) {
    for (const x of iterable) {
      b.push(x);
      if (b.length === size) {
        yield b;
        b = [];
      }
    }
  } else {
    for await (const x of iterable) {
      b.push(x);
      if (b.length === size) {
        yield b;
        b = [];
      }
    }
  }
  if (b.length > 0) yield b;
}

/** Every element of every array item. */
export async function* flattenAsync(iterable) {
  for await (const b of iterable) yield* b;
}

/** A Web Streams TransformStream that groups chunks into arrays of `size`. */
export function batchStream(size) {
  let b = [];
  return new TransformStream({
    transform(x, controller) {
      b.push(x);
      if (b.length === size) {
        controller.enqueue(b);
        b = [];
      }
    },
    flush(controller) {
      if (b.length > 0) controller.enqueue(b);
    },
  });
}

/** A Web Streams TransformStream that awaits `fn` on each chunk, one at a time. */
export function mapStream(fn) {
  return new TransformStream({
    async transform(x, controller) {
      controller.enqueue(await fn(x));
    },
  });
}

/**
 * A ReadableStream that keeps up to `c` calls of `fn` in flight over a sync
 * iterable and enqueues their results in input order (a pull-driven window).
 */
export function windowStream(iterable, fn, c) {
  const it = iterable[Symbol.iterator]();
  const window = [];
  let done = false;
  const fill = () => {
    while (!done && window.length < c) {
      const r = it.next();
      if (r.done) done = true;
      else window.push(fn(r.value));
    }
  };
  return new ReadableStream({
    async pull(controller) {
      fill();
      if (window.length === 0) return controller.close();
      controller.enqueue(await window.shift());
    },
  }, { highWaterMark: 0 });
}
