// Case factories shared by the workloads. A case is `{ id, lib, label, order,
// consume, role, setup }`: `setup()` loads what it needs, once, and returns one
// run (what a run takes and returns is the workload's business). These build
// the fields every case of a kind repeats, and the peers that several
// workloads run alike, so a workload writes only what it does differently.
// Nothing here runs per item: each run does exactly what its workload's code
// did inline before.
import { loadSluice } from "./common.mjs";
import { orderedWindow } from "./hand.mjs";

/**
 * A peer library's case: `make(mod)` gets the module `load` names (`lib` by
 * default; `null` for nothing to import, as for hand-written code) and returns
 * one run.
 */
export function peerCase({
  id,
  lib,
  label,
  order,
  consume = "stream",
  load = lib,
  make,
}) {
  return {
    id,
    lib,
    label,
    order,
    consume,
    role: "peer",
    setup: async () => make(load === null ? undefined : await import(load)),
  };
}

/**
 * The streaming maps of W1, W2 and W3, as cases by name: `pMapIterable` in
 * both orders, streaming-iterables' `parallelMap` (input order) and
 * `transform` (completion order), and the hand-written ordered `window`.
 * `run(map, ordered)` makes one run from `map(source)`, the source mapped
 * through `fn` at `concurrency` as an async iterable. `labels` replaces labels
 * by case id.
 */
export function streamingMapPeers(fn, concurrency, run, labels = {}) {
  const peer = (id, lib, label, order, map) =>
    peerCase({
      id,
      lib,
      label: labels[id] ?? label,
      order,
      load: lib === "hand-written" ? null : lib,
      make: (mod) => run((source) => map(mod, source), order === "input"),
    });
  return {
    pMapIterable: peer(
      "p-map-iterable",
      "p-map",
      "`pMapIterable`",
      "input",
      ({ pMapIterable }, source) => pMapIterable(source, fn, { concurrency }),
    ),
    pMapIterableUnordered: peer(
      "p-map-iterable-unordered",
      "p-map",
      "`pMapIterable`, `preserveOrder: false`",
      "completion",
      ({ pMapIterable }, source) =>
        pMapIterable(source, fn, { concurrency, preserveOrder: false }),
    ),
    parallelMap: peer(
      "streaming-iterables-parallel-map",
      "streaming-iterables",
      "`parallelMap`",
      "input",
      ({ parallelMap }, source) => parallelMap(concurrency, fn, source),
    ),
    transform: peer(
      "streaming-iterables-transform",
      "streaming-iterables",
      "`transform`",
      "completion",
      ({ transform }, source) => transform(concurrency, fn, source),
    ),
    window: peer(
      "hand-window",
      "hand-written",
      `ordered window of ${concurrency} (async generator)`,
      "input",
      (_, source) => orderedWindow(source, fn, concurrency),
    ),
  };
}

/**
 * Effect's `Stream.mapEffect` in input order and with `unordered: true`:
 * `make(mod, unordered)` returns one run. Labels: `label`, then
 * `, \`unordered: true\`` for the second, then `suffix`.
 */
export function effectStreamPeers(make, label, suffix = "") {
  return [false, true].map((unordered) =>
    peerCase({
      id: unordered ? "effect-stream-unordered" : "effect-stream",
      lib: "effect",
      label: `${label}${unordered ? ", `unordered: true`" : ""}${suffix}`,
      order: unordered ? "completion" : "input",
      make: (mod) => make(mod, unordered),
    })
  );
}

/** `Stream.mapEffect` of the async `f` (for `effectStreamPeers`). */
export function mapEffect({ Effect, Stream }, f, concurrency, unordered) {
  return Stream.mapEffect((x) => Effect.promise(() => f(x)), {
    concurrency,
    unordered,
  });
}

/**
 * sluice consumed with `for await`, in `order`, with `bufferSize` when given
 * (W2 and W3): `make(sluice, { order, bufferSize })` returns one run.
 */
export function sluiceStreamCase(order, bufferSize, make) {
  return {
    id: `sluice-${order}${bufferSize ? `-buffer-${bufferSize}` : ""}`,
    lib: "sluice",
    label: `sluice \`for await\`${
      bufferSize ? `, \`bufferSize: ${bufferSize}\`` : ""
    }`,
    order,
    consume: "stream",
    role: "sluice",
    setup: async () => make(await loadSluice(), { order, bufferSize }),
  };
}
