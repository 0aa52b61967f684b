// W7, threads: sluice's `ThreadPool` (size 2) against inline code and the
// thread pools of each runtime (piscina and tinypool on Node,
// poolifier-web-worker on Deno), all running the same task module
// (w7_tasks.mjs, through a small wrapper per library). Four measurements, told
// apart by the case id's prefix:
//
// - `cpu-*`: 48 tasks (12 with --quick) of ≈ 40 ms CPU each, through
//   `map(fn, { concurrency: 2 })`; the floor is the same map calling the task
//   inline. Each library's call is the map's function, so only the thread hop
//   differs. Figure: the makespan (median of 3 after a warm-up of 4 tasks).
// - `tiny-*`: `--n` (100,000) calls of a one-line task, all made at once
//   (`Promise.all`), each library queueing them itself; figure: the total, and
//   the round trip per call. `tiny-sluice-map` drives sluice's through
//   `map(threads.task("tiny"), { concurrency: 2 })` instead.
// - `transfer-*`: an `ArrayBuffer` of 1 MB or 16 MB to a thread and back,
//   moved both ways (the thread sums a sample of its bytes into its first 4);
//   a 16 MB buffer copied both ways (no transfer list) for reference. Figure:
//   the median round trip of 200 (after 20), alternating with a 1 MB buffer
//   moved through the same thread (`pairedRatio`: the case's median over it).
// - `abort-*`: 20 calls of a task that spins forever, each aborted 30 ms after
//   it started; figure: the median time from `abort()` to the call's
//   rejection (`p95Ms`: the 95th percentile), and `nextMs`: from `abort()` to
//   the answer of the next call (a fresh thread). Node only, except sluice's
//   `isolation: "process"` mode where the sluice build has it: Deno 2.9.5's
//   `terminate()` leaves a busy loop running, so the threads would never stop.
//
// Every case checks its answers (count, sum and hash of the results; the
// stamped sums of the buffers and that the sent buffer was detached; that
// every aborted call rejected and every next call answered right).
import { fileURLToPath } from "node:url";
import {
  args,
  expected,
  loadSluice,
  main,
  median,
  now,
  numArg,
  range,
  runtime,
  Sink,
  sleep,
  verify,
} from "../common.mjs";
import { cpu, CPU_ITERATIONS, stamp, tiny } from "./w7_tasks.mjs";

const quick = !!args.quick;
const N = numArg("n", 100_000);
const CPU_TASKS = quick ? 12 : 48;
const SIZE = 2;
const seeds = range(CPU_TASKS).map((i) => i + 1);
const tinyItems = range(N);
const tinyWant = expected(tinyItems.map(tiny));

/** The answers of `cpu` over `seeds`, computed once (`CPU_ITERATIONS` fixed). */
const CPU_WANT = {
  "14000000:12": { count: 12, sum: 28402643578, hash: -1045408215 },
  "14000000:48": { count: 48, sum: 112164508288, hash: -115467576 },
};
const cpuWant = CPU_WANT[`${CPU_ITERATIONS}:${CPU_TASKS}`] ??
  expected(seeds.map(cpu));

const here = (file) => new URL(file, import.meta.url);

// ---- the libraries, behind one shape -----------------------------------------
// `open()` returns `{ call(name, arg, { signal, transfer }), close() }`.

/** sluice's `ThreadPool` on w7_tasks_sluice.mjs. */
async function openSluice(extra = {}) {
  if (typeof args.threads !== "string") {
    throw new Error(
      "--threads <file URL of sluice's threads module> is missing",
    );
  }
  const { ThreadPool } = await import(args.threads);
  const url = here(
    `./w7_tasks_sluice.mjs?threads=${encodeURIComponent(args.threads)}`,
  );
  const pool = new ThreadPool(url, { size: SIZE, ...extra });
  return {
    pool,
    call: (name, arg, options) => pool.run(name, arg, options),
    close: () => pool.close({ force: true }),
  };
}

/** piscina or tinypool (the same options and `run(arg, { name })`). */
async function openNodePool(lib) {
  const mod = await import(lib);
  const Pool = lib === "piscina" ? mod.Piscina ?? mod.default : mod.Tinypool;
  const pool = new Pool({
    filename: fileURLToPath(here(`./w7_tasks_${lib}.mjs`)),
    minThreads: SIZE,
    maxThreads: SIZE,
  });
  return {
    call: (name, arg, { signal, transfer } = {}) =>
      pool.run(arg, { name, signal, transferList: transfer }),
    close: () => pool.destroy(),
  };
}

/** poolifier-web-worker's `FixedThreadPool` (module Web Workers). */
async function openPoolifier() {
  const { FixedThreadPool } = await import("poolifier-web-worker");
  const pool = new FixedThreadPool(SIZE, here("./w7_tasks_poolifier.mjs"), {
    errorEventHandler: (e) => console.error(e),
  });
  return {
    call: (name, arg, { signal, transfer } = {}) =>
      pool.execute(arg, name, signal, transfer),
    close: () => pool.destroy(),
  };
}

const LIBS = {
  sluice: { lib: "sluice", label: "`ThreadPool`, `size: 2`", open: openSluice },
  piscina: {
    lib: "piscina",
    label: "`Piscina`, 2 threads",
    open: () => openNodePool("piscina"),
    runtimes: ["node"],
  },
  tinypool: {
    lib: "tinypool",
    label: "`Tinypool`, 2 threads",
    open: () => openNodePool("tinypool"),
    runtimes: ["node"],
  },
  poolifier: {
    lib: "poolifier-web-worker",
    label: "`FixedThreadPool(2)`",
    open: openPoolifier,
    runtimes: ["deno"],
  },
};

const onThisRuntime = (key) =>
  (LIBS[key].runtimes ?? [runtime]).includes(runtime);

// ---- measurements --------------------------------------------------------------

/** Warm-up, then the median makespan of `iters` runs of `once()` (a Sink). */
async function makespans(once, check, { warm, iters }) {
  await warm();
  const samples = [];
  for (let i = 0; i < iters; i++) {
    const start = now();
    const sink = await once();
    samples.push(now() - start);
    const error = check(sink);
    if (error) throw new Error(error);
  }
  return { ms: median(samples), samples };
}

async function cpuRun(fn) {
  const { map, pipeline } = await loadSluice();
  const stage = (items) =>
    pipeline(map(fn, { concurrency: SIZE })).run(items).collect();
  const r = await makespans(
    async () => {
      const sink = new Sink(null);
      sink.addAll(await stage(seeds));
      return sink;
    },
    (sink) => verify(sink, cpuWant),
    { warm: () => stage(seeds.slice(0, 4)), iters: quick ? 2 : 3 },
  );
  return { ...r, tasks: CPU_TASKS, iterations: CPU_ITERATIONS };
}

async function tinyRun(call) {
  const once = async () => {
    const sink = new Sink((k) => tiny(k));
    sink.addAll(await Promise.all(tinyItems.map(call)));
    return sink;
  };
  const r = await makespans(
    once,
    (sink) => verify(sink, tinyWant, { ordered: true }),
    {
      warm: () => Promise.all(tinyItems.slice(0, N / 10).map(call)),
      iters: quick ? 2 : 3,
    },
  );
  return { ...r, n: N, usPerCall: (r.ms * 1000) / N };
}

const MB = 2 ** 20;

/**
 * Round trips of a buffer of `bytes` (moved or copied) through `stamp`,
 * alternating with a 1 MB buffer moved through the same thread: the figure
 * is the median of 200 (after 20), and `pairedRatio` its median over the
 * 1 MB one's from the same process (what the target uses: a process's
 * thread latency moves between ≈ 0.04 and ≈ 0.09 ms from run to run).
 */
async function transferRun(lib, bytes, move) {
  const t = await lib.open();
  const round = async (state, moveIt) => {
    new DataView(state.buffer).setInt32(0, 0);
    const sent = state.buffer;
    const start = now();
    const back = await t.call(moveIt ? "stampMoved" : "stamp", sent, {
      transfer: moveIt ? [sent] : [],
    });
    const ms = now() - start;
    if (moveIt && sent.byteLength !== 0) {
      throw new Error("the sent buffer was not detached (copied, not moved)");
    }
    if (!(back instanceof ArrayBuffer) || back.byteLength !== state.bytes) {
      throw new Error(
        `got back ${back?.byteLength} bytes, sent ${state.bytes}`,
      );
    }
    const got = new DataView(back).getInt32(0);
    if (got !== state.want) {
      throw new Error(`stamp ${got}, expected ${state.want}`);
    }
    state.buffer = back;
    return ms;
  };
  const make = (size) => {
    const buffer = new ArrayBuffer(size);
    const view = new Uint8Array(buffer);
    for (let i = 0; i < size; i++) view[i] = (i * 31) & 0xff;
    const want = new DataView(stamp(buffer.slice(0))).getInt32(0);
    return { buffer, bytes: size, want };
  };
  const it = make(bytes);
  const ref = make(MB);
  const samples = [];
  const refSamples = [];
  for (let i = 0; i < 220; i++) {
    const a = await round(it, move);
    const b = await round(ref, true);
    if (i >= 20) {
      samples.push(a);
      refSamples.push(b);
    }
  }
  await t.close();
  const ms = median(samples);
  const refMs = median(refSamples);
  return {
    ms,
    samples: samples.slice(0, 20),
    refMs,
    pairedRatio: ms / refMs,
    bytes,
    moved: move,
  };
}

async function abortRun(t, isAbort) {
  await Promise.all([t.call("tiny", 1), t.call("tiny", 2)]); // threads loaded
  const rejectMs = [];
  const nextMs = [];
  for (let k = 0; k < 20; k++) {
    const controller = new AbortController();
    let settled = null;
    const spinning = t.call("spin", 0, { signal: controller.signal }).then(
      () => (settled = { ok: true }),
      (error) => (settled = { ok: false, error, at: now() }),
    );
    await sleep(30);
    if (settled !== null) throw new Error("the spinning call settled early");
    const start = now();
    controller.abort();
    await spinning;
    if (settled.ok) throw new Error("an aborted call resolved");
    if (!isAbort(settled.error, controller.signal)) {
      throw new Error(`an aborted call rejected with ${settled.error}`);
    }
    rejectMs.push(settled.at - start);
    const answer = await t.call("tiny", k);
    nextMs.push(now() - start);
    if (answer !== tiny(k)) throw new Error(`next call: ${answer}`);
  }
  await t.close();
  const sorted = [...rejectMs].sort((a, b) => a - b);
  return {
    ms: median(rejectMs),
    p95Ms: sorted[Math.ceil(0.95 * sorted.length) - 1],
    maxMs: sorted[sorted.length - 1],
    nextMs: median(nextMs),
    samples: rejectMs,
  };
}

// ---- cases ----------------------------------------------------------------------

const kase = (id, lib, label, role, measure) => ({
  id,
  lib,
  label,
  order: "input",
  consume: "array",
  role,
  measure,
});

const cases = [
  kase(
    "cpu-inline",
    "floor",
    "inline: `map(cpu, { concurrency: 2 })` on the main thread",
    "floor",
    () => cpuRun(cpu),
  ),
];
for (const key of Object.keys(LIBS).filter(onThisRuntime)) {
  const { lib, label, open } = LIBS[key];
  const role = key === "sluice" ? "sluice" : "peer";
  cases.push(kase(
    `cpu-${key}`,
    lib,
    `${label}, \`map(…, { concurrency: 2 })\``,
    role,
    async () => {
      const t = await open();
      return cpuRun(
        key === "sluice" ? t.pool.task("cpu") : (seed) => t.call("cpu", seed),
      );
    },
  ));
}
cases.push(kase(
  "tiny-inline",
  "floor",
  "inline: `Promise.all` of direct async calls",
  "reference",
  // deno-lint-ignore require-await
  () => tinyRun(async (x) => tiny(x)),
));
for (const key of Object.keys(LIBS).filter(onThisRuntime)) {
  const { lib, label, open } = LIBS[key];
  cases.push(kase(
    `tiny-${key}`,
    lib,
    `${label}, \`Promise.all\` of every call`,
    key === "sluice" ? "sluice" : "peer",
    async () => {
      const t = await open();
      return tinyRun((x) => t.call("tiny", x));
    },
  ));
}
cases.push(kase(
  "tiny-sluice-map",
  "sluice",
  "`ThreadPool`, `size: 2`, `map(threads.task(…), { concurrency: 2 })`",
  "sluice",
  async () => {
    const { pool } = await openSluice();
    const { map, pipeline } = await loadSluice();
    const fn = pool.task("tiny");
    const run = async (items) => {
      const sink = new Sink((k) => tiny(k));
      sink.addAll(
        await pipeline(map(fn, { concurrency: SIZE })).run(items).collect(),
      );
      return sink;
    };
    const r = await makespans(
      () => run(tinyItems),
      (sink) => verify(sink, tinyWant, { ordered: true }),
      { warm: () => run(tinyItems.slice(0, N / 10)), iters: quick ? 2 : 3 },
    );
    return { ...r, n: N, usPerCall: (r.ms * 1000) / N };
  },
));
for (
  const [suffix, bytes, move] of [["1mb", MB, true], ["16mb", 16 * MB, true], [
    "16mb-copy",
    16 * MB,
    false,
  ]]
) {
  cases.push(kase(
    `transfer-sluice-${suffix}`,
    "sluice",
    `${bytes / MB} MB \`ArrayBuffer\` there and back, ${
      move ? "moved (`transfer`)" : "copied (no transfer list)"
    }`,
    "sluice",
    () => transferRun(LIBS.sluice, bytes, move),
  ));
}
const isAbortError = (error) => error?.name === "AbortError";
cases.push(kase(
  "abort-sluice",
  "sluice",
  runtime === "deno"
    ? '`ThreadPool`, `isolation: "process"` (Deno\'s `terminate()` leaves a busy loop running)'
    : "`ThreadPool`, `size: 2`, `run(…, { signal })`",
  "sluice",
  async () => {
    let t;
    try {
      t = await openSluice(runtime === "deno" ? { isolation: "process" } : {});
    } catch (error) {
      throw new Error(
        `not measured on Deno: this sluice has no \`isolation: "process"\` (${error.message}), and Deno 2.9.5's terminate() leaves a busy loop running`,
      );
    }
    return abortRun(t, (error, signal) => error === signal.reason);
  },
));
for (const key of ["piscina", "tinypool"].filter(onThisRuntime)) {
  cases.push(kase(
    `abort-${key}`,
    LIBS[key].lib,
    `${LIBS[key].label}, \`run(…, { signal })\``,
    "peer",
    async () => abortRun(await LIBS[key].open(), isAbortError),
  ));
}

await main(cases, async (c) => ({ quick, ...(await c.measure()) }));
