/**
 * `isolation: "process"` of a `ThreadPool`: each slot is a child process of
 * the same runtime (`Deno.Command` in Deno, `node:child_process` in Node and
 * Bun) that can be killed for real, busy or not. Deno 2.9's
 * `Worker.terminate()` leaves a busy loop running; `SIGKILL` does not.
 *
 * The protocol is the threads' one (see `_bootstrap.ts`), in frames over the
 * child's stdin and stdout: the bytes `0xFF 0x53`, a 4-byte big-endian
 * length, then the message serialized with `node:v8` (structured-clone types
 * survive; `transfer` copies). Inside the child, `console` and writes to
 * stdout go to stderr; other bytes on stdout (never starting with `0xFF`,
 * which no UTF-8 text does) fail the call with a `ThreadError`, never hang.
 *
 * @module
 */

import { ANSWER_SOURCE } from "./_bootstrap.ts";
import {
  importBuiltin,
  type Spawner,
  type Thread,
  type ThreadEvents,
} from "./_spawner.ts";

interface V8 {
  serialize(value: unknown): Uint8Array;
  deserialize(bytes: Uint8Array): unknown;
}

interface DenoChild {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
  ref(): void;
  unref(): void;
}

interface DenoNamespace {
  execPath(): string;
  Command: new (command: string, options: {
    args: string[];
    stdin: "piped";
    stdout: "piped";
    stderr: "inherit";
  }) => { spawn(): DenoChild };
}

interface NodeStream {
  on(event: string, listener: (arg: never) => void): void;
  write(bytes: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  ref?(): void;
  unref?(): void;
}

interface NodeChild {
  readonly pid?: number;
  readonly stdin: NodeStream;
  readonly stdout: NodeStream;
  kill(signal?: string): boolean;
  on(event: string, listener: (...args: never[]) => void): void;
  ref(): void;
  unref(): void;
}

interface NodeChildProcess {
  spawn(command: string, args: string[], options: {
    stdio: ["pipe", "pipe", "inherit"];
    windowsHide: true;
  }): NodeChild;
}

/**
 * The code a child process runs (an ES module, Deno, Node and Bun): it
 * imports the task module and answers calls in frames on stdout.
 */
export function childSource(moduleURL: string): string {
  return String.raw`const MODULE_URL = ${JSON.stringify(moduleURL)};
const { serialize, deserialize } = await import("node:v8");
const D = globalThis.Deno;
let writeOut;
let exit;
if (D !== undefined) {
  // Frames only on stdout: console and Deno.stdout go to stderr.
  const raw = D.stdout.writeSync.bind(D.stdout);
  writeOut = (bytes) => { let o = 0; while (o < bytes.length) o += raw(bytes.subarray(o)); };
  D.stdout.write = (p) => D.stderr.write(p);
  D.stdout.writeSync = (p) => D.stderr.writeSync(p);
  const proc = (await import("node:process")).default;
  proc.stdout.write = proc.stderr.write.bind(proc.stderr);
  exit = D.exit.bind(D);
  D.exit = (code) => { post({ dead: "the task called Deno.exit(" + (code ?? "") + ")" }); exit(code); };
  if (typeof globalThis.close === "function") {
    globalThis.close = () => { post({ dead: "the task called close()" }); exit(0); };
  }
  // Deno ends the process after these (code 1); the pool hears why first.
  globalThis.addEventListener("error", (e) => uncaught(e.error));
  globalThis.addEventListener("unhandledrejection", (e) => uncaught(e.reason));
} else {
  // Node, Bun: console writes through process.stdout.write.
  const raw = process.stdout.write.bind(process.stdout);
  writeOut = (bytes) => raw(bytes);
  process.stdout.write = process.stderr.write.bind(process.stderr);
  // Bun may not end the process on these: end it, as Node does (code 1).
  const fatal = (e) => { console.error(e); uncaught(e); exit(1); };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
}
{
  // console writes to stdout natively in Deno and Bun: one on stderr instead.
  const { Console } = await import("node:console");
  const stderr = (await import("node:process")).default.stderr;
  globalThis.console = new Console({ stdout: stderr, stderr });
}
const proc = globalThis.process;
if (proc !== undefined && typeof proc.exit === "function") {
  const pexit = proc.exit.bind(proc);
  exit ??= pexit;
  proc.exit = (code) => { post({ dead: "the task called process.exit(" + (code ?? "") + ")" }); pexit(code); };
}
function uncaught(e) {
  try { post({ dead: "an uncaught error: " + (e?.message ?? String(e)) }); } catch {}
}
// Transfer lists do not cross a process: the frame is a copy.
function post(message, _list) {
  const body = serialize(message);
  const frame = new Uint8Array(6 + body.length);
  frame[0] = 0xff;
  frame[1] = 0x53;
  new DataView(frame.buffer).setUint32(2, body.length);
  frame.set(body, 6);
  writeOut(frame);
}
${ANSWER_SOURCE}
let buffered = new Uint8Array(0);
const input = D !== undefined ? D.stdin.readable : process.stdin;
for await (const chunk of input) {
  const joined = new Uint8Array(buffered.length + chunk.length);
  joined.set(buffered);
  joined.set(chunk, buffered.length);
  buffered = joined;
  while (buffered.length >= 6) {
    const size = new DataView(buffered.buffer, buffered.byteOffset).getUint32(2);
    if (buffered.length < 6 + size) break;
    // A copy: node:v8 reads typed arrays at offsets into the whole buffer.
    const message = deserialize(buffered.slice(6, 6 + size));
    buffered = buffered.slice(6 + size);
    enqueue(message);
  }
}
// The pool closed stdin (or ended): nothing more to do.
exit(0);
`;
}

/** The first bytes of every frame: `0xFF` starts no UTF-8 text. */
const MAGIC_0 = 0xff;
const MAGIC_1 = 0x53;
const HEADER = 6;

/**
 * Splits a byte stream into frames: `0xFF 0x53`, a 4-byte big-endian length,
 * then the bytes. Throws on bytes that are not a frame.
 */
class FrameReader {
  #buffer = new Uint8Array(0);

  /** Adds bytes; returns the frames now complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buffer = chunk;
    if (this.#buffer.length > 0) {
      buffer = new Uint8Array(this.#buffer.length + chunk.length);
      buffer.set(this.#buffer);
      buffer.set(chunk, this.#buffer.length);
    }
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (buffer.length - offset >= 2) {
      if (buffer[offset] !== MAGIC_0 || buffer[offset + 1] !== MAGIC_1) {
        throw new TypeError("not a frame");
      }
      if (buffer.length - offset < HEADER) break;
      const size = new DataView(buffer.buffer, buffer.byteOffset + offset)
        .getUint32(2);
      if (buffer.length - offset - HEADER < size) break;
      frames.push(buffer.subarray(offset + HEADER, offset + HEADER + size));
      offset += HEADER + size;
    }
    this.#buffer = buffer.slice(offset);
    return frames;
  }
}

function frame(v8: V8, message: unknown): Uint8Array {
  const body = v8.serialize(message);
  const out = new Uint8Array(HEADER + body.length);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  new DataView(out.buffer).setUint32(2, body.length);
  out.set(body, HEADER);
  return out;
}

/** What ended a child, in words. */
function exitReason(code: number | null, signal: string | null): string {
  return signal !== null
    ? `the process was killed by ${signal}`
    : `the process exited with code ${code}`;
}

/** Handles the frames of one child; reports its death once. */
class Link {
  readonly #v8: V8;
  readonly #events: ThreadEvents;
  readonly #frames = new FrameReader();
  thread!: Thread;
  ended = false;

  constructor(v8: V8, events: ThreadEvents) {
    this.#v8 = v8;
    this.#events = events;
  }

  /** Bytes from the child's stdout; false when they broke the protocol. */
  data(chunk: Uint8Array): boolean {
    if (this.ended) return true;
    let messages: unknown[];
    try {
      // Copies: node:v8 reads typed arrays at offsets into the whole buffer.
      messages = this.#frames.push(chunk).map((f) =>
        this.#v8.deserialize(f.slice())
      );
    } catch (error) {
      this.die(
        "the process wrote to stdout outside the protocol (a task's output must go to stderr)",
        error,
      );
      return false;
    }
    for (const message of messages) {
      if (this.ended) break;
      this.#events.message(this.thread, message);
    }
    return true;
  }

  die(reason: string, error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.thread.terminate();
    this.#events.died(this.thread, reason, error);
  }
}

/** Child processes made with `Deno.Command`. */
class DenoProcessSpawner implements Spawner {
  readonly #deno: DenoNamespace;
  readonly #v8: V8;
  readonly #code: string;
  /** Children not yet fully gone (status, stdout and stdin closed). */
  readonly #alive = new Set<Promise<void>>();

  constructor(deno: DenoNamespace, v8: V8, moduleURL: string) {
    this.#deno = deno;
    this.#v8 = v8;
    this.#code = childSource(moduleURL);
  }

  spawn(events: ThreadEvents): Thread {
    const link = new Link(this.#v8, events);
    let child: DenoChild;
    try {
      child = new this.#deno.Command(this.#deno.execPath(), {
        args: ["eval", "--ext=js", this.#code],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      // No --allow-run, say: the call fails with a ThreadError (cause: why).
      link.thread = { post: () => {}, terminate: () => {}, ref: () => {} };
      queueMicrotask(() =>
        link.die(`the process could not start: ${String(error)}`, error)
      );
      return link.thread;
    }
    const writer = child.stdin.getWriter();
    const reader = child.stdout.getReader();
    let killed = false;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      writer.abort().catch(() => {});
      reader.cancel().catch(() => {});
    };
    link.thread = {
      post: (message) => {
        writer.write(frame(this.#v8, message)).catch(() => {});
      },
      terminate: () => {
        link.ended = true;
        if (!killed) {
          killed = true;
          child.ref(); // close() awaits its status: keep the loop alive
          try {
            child.kill("SIGKILL");
          } catch {
            // already exited
          }
        }
        stop();
      },
      ref: (on) => on ? child.ref() : child.unref(),
    };
    const read = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done || !link.data(value)) break;
        }
      } catch {
        // cancelled, or the pipe broke: the status says why
      }
    })();
    const gone = Promise.all([child.status, read]).then(([status]) => {
      stop();
      link.die(exitReason(status.code, status.signal));
    });
    this.#alive.add(gone);
    gone.finally(() => this.#alive.delete(gone));
    return link.thread;
  }

  /** Resolves once every child is gone. */
  async close(): Promise<void> {
    while (this.#alive.size > 0) await Promise.all(this.#alive);
  }
}

/** Child processes made with `node:child_process` (Node, Bun). */
class NodeProcessSpawner implements Spawner {
  readonly #cp: NodeChildProcess;
  readonly #v8: V8;
  readonly #execPath: string;
  readonly #args: string[];
  readonly #alive = new Set<Promise<void>>();

  constructor(
    cp: NodeChildProcess,
    v8: V8,
    execPath: string,
    bun: boolean,
    moduleURL: string,
  ) {
    this.#cp = cp;
    this.#v8 = v8;
    this.#execPath = execPath;
    const code = childSource(moduleURL);
    this.#args = bun ? ["-e", code] : ["--input-type=module", "-e", code];
  }

  spawn(events: ThreadEvents): Thread {
    const child = this.#cp.spawn(this.#execPath, this.#args, {
      stdio: ["pipe", "pipe", "inherit"],
      windowsHide: true,
    });
    const link = new Link(this.#v8, events);
    let killed = false;
    const refAll = (on: boolean) => {
      for (const target of [child, child.stdin, child.stdout]) {
        (on ? target.ref : target.unref)?.call(target);
      }
    };
    link.thread = {
      post: (message) => {
        child.stdin.write(frame(this.#v8, message));
      },
      terminate: () => {
        link.ended = true;
        if (!killed) {
          killed = true;
          refAll(true); // close() awaits its "close": keep the loop alive
          child.kill("SIGKILL");
          child.stdin.destroy();
        }
      },
      ref: refAll,
    };
    child.stdin.on("error", () => {}); // a dead child's pipe: seen on "close"
    child.stdout.on("data", (chunk: Uint8Array) => {
      if (!link.data(chunk)) child.stdout.destroy();
    });
    const gone = new Promise<void>((resolve) => {
      child.on("error", (error: unknown) => {
        link.die(`the process could not start: ${String(error)}`, error);
        resolve();
      });
      child.on("close", (code: number | null, signal: string | null) => {
        link.die(exitReason(code, signal));
        resolve();
      });
    });
    this.#alive.add(gone);
    gone.finally(() => this.#alive.delete(gone));
    return link.thread;
  }

  async close(): Promise<void> {
    while (this.#alive.size > 0) await Promise.all(this.#alive);
  }
}

interface Host {
  Deno?: Partial<DenoNamespace>;
  process?: { execPath?: string; versions?: { node?: string; bun?: string } };
}

const NO_PROCESSES =
  `'isolation' "process" needs child processes (Deno.Command in Deno, node:child_process in Node and Bun), and this runtime has none: use "thread"`;

/** Throws when this runtime cannot start child processes. */
export function assertProcesses(): void {
  const host = globalThis as Host;
  if (
    typeof host.Deno?.Command !== "function" &&
    host.process?.versions?.node === undefined
  ) throw new TypeError(NO_PROCESSES);
}

/** The process spawner of this runtime. */
export async function processSpawnerFor(
  moduleURL: string,
): Promise<Spawner & { close(): Promise<void> }> {
  const host = globalThis as Host;
  const v8 = await importBuiltin("v8") as V8;
  const deno = host.Deno;
  if (
    typeof deno?.Command === "function" && typeof deno.execPath === "function"
  ) {
    return new DenoProcessSpawner(deno as DenoNamespace, v8, moduleURL);
  }
  const proc = host.process;
  if (proc?.versions?.node !== undefined && proc.execPath !== undefined) {
    const cp = await importBuiltin("child_process") as NodeChildProcess;
    return new NodeProcessSpawner(
      cp,
      v8,
      proc.execPath,
      proc.versions.bun !== undefined,
      moduleURL,
    );
  }
  throw new TypeError(NO_PROCESSES);
}
