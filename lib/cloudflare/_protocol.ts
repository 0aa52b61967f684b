// What remote(), consume() and SluiceRun say to each other. Internal to
// sluice/cloudflare: both sides come from the same version of the package.
import type { RunNamespace } from "./types.ts";

/** The body of one queue message (sent with `contentType: "json"`). */
export interface TaskMessage {
  /** Marks the message as one of sluice's, and its version. */
  readonly sluice: 1;
  /** The run's id: the name of its Durable Object. */
  readonly run: string;
  /** The task's name, a key of `consume()`'s map. */
  readonly task: string;
  /** The call's key within the run: `<stage>/<itemId>/<attempt>`. */
  readonly key: string;
  /** The item's id, for errors and the task's context. */
  readonly itemId: string;
  /** The item. */
  readonly item?: unknown;
}

/** The error of a failed attempt, as it travels. */
export interface ErrorData {
  readonly name: string;
  readonly message: string;
}

/** A call's final outcome, recorded once per key by the Durable Object. */
export type Outcome =
  | { readonly key: string; readonly ok: true; readonly value?: unknown }
  | {
    readonly key: string;
    readonly ok: false;
    readonly task: string;
    readonly itemId: string;
    readonly queue: string;
    readonly attempts: number;
    readonly error?: ErrorData;
  };

/** The requests of the protocol and their answers. */
export interface Ops {
  /** remote(): the outcomes recorded after `after` (waits for one). */
  poll: {
    in: { after: number; epoch: string };
    out: { epoch: string; next: number; entries: Outcome[] };
  };
  /** consume(): before running a batch, which keys to drop. */
  check: { in: { keys: string[] }; out: { aborted: boolean; skip: string[] } };
  /** consume(): the batch's results and failed attempts. */
  report: {
    in: {
      results: { key: string; value?: unknown }[];
      errors: { key: string; error: ErrorData; attempts: number }[];
    };
    out: { aborted: boolean };
  };
  /** The dead-letter consumer: these calls failed for good. */
  dead: {
    in: {
      queue: string;
      entries: { key: string; task: string; itemId: string }[];
    };
    out: { aborted: boolean };
  };
  /** remote(): aborted calls, which the consumer must not start. */
  cancel: { in: { keys: string[] }; out: { aborted: boolean } };
}

/** The name of an op. */
export type Op = keyof Ops;

/** A way to reach one run's Durable Object. */
export interface RunLink {
  op<K extends Op>(
    name: K,
    body: Ops[K]["in"],
    signal?: AbortSignal,
  ): Promise<Ops[K]["out"]>;
}

/** The header that carries the run id to the Durable Object. */
export const RUN_HEADER = "x-sluice-run";
/** The path prefix of the protocol's requests. */
export const OP_PATH = "/__sluice/";

/** The method of a `SluiceRun` that answers an op in the same isolate. */
export const HANDLE_OP: unique symbol = Symbol("sluice.handleOp");

/** Something that answers ops in the same isolate (a `SluiceRun`). */
export interface LocalRun {
  readonly runId: string | undefined;
  [HANDLE_OP](
    runId: string,
    name: Op,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<unknown>;
}

/** Whether `value` answers ops itself (a `SluiceRun`). */
export function isLocalRun(value: unknown): value is LocalRun {
  return typeof value === "object" && value !== null &&
    typeof (value as Partial<LocalRun>)[HANDLE_OP] === "function";
}

/** Whether `value` looks like a Durable Object namespace binding. */
export function isNamespace(value: unknown): value is RunNamespace {
  return typeof value === "object" && value !== null &&
    typeof (value as RunNamespace).idFromName === "function" &&
    typeof (value as RunNamespace).get === "function";
}

/** The link to run `runId` through its namespace: JSON over `stub.fetch`. */
export function namespaceLink(ns: RunNamespace, runId: string): RunLink {
  const stub = ns.get(ns.idFromName(runId));
  return {
    async op(name, body, signal) {
      const res = await stub.fetch(
        new Request(`https://sluice.run${OP_PATH}${name}`, {
          method: "POST",
          headers: { "content-type": "application/json", [RUN_HEADER]: runId },
          body: JSON.stringify(body),
          signal,
        }),
      );
      if (!res.ok) {
        throw new Error(
          `the Durable Object of run "${runId}" answered ${name} with HTTP ${res.status}: ${await res
            .text()}`,
        );
      }
      return await res.json();
    },
  };
}

/** The link to a run in this isolate. */
export function localLink(run: LocalRun, runId: string): RunLink {
  return {
    op: (name, body, signal) =>
      run[HANDLE_OP](runId, name, body, signal) as Promise<never>,
  };
}

/** The key of a call within its run. */
export function keyOf(stage: string, itemId: unknown, attempt: number): string {
  return `${encodeURIComponent(stage)}/${
    encodeURIComponent(String(itemId))
  }/${attempt}`;
}

/** Whether a message body is one of sluice's. */
export function isTaskMessage(body: unknown): body is TaskMessage {
  const m = body as Partial<TaskMessage> | null;
  return typeof m === "object" && m !== null && m.sluice === 1 &&
    typeof m.run === "string" && typeof m.task === "string" &&
    typeof m.key === "string" && typeof m.itemId === "string";
}

/** An error as it travels. */
export function errorData(error: unknown): ErrorData {
  const e = error as { name?: unknown; message?: unknown } | null;
  if (typeof e === "object" && e !== null && typeof e.message === "string") {
    return {
      name: typeof e.name === "string" && e.name ? e.name : "Error",
      message: e.message,
    };
  }
  let message: string;
  try {
    message = String(error);
  } catch {
    message = "a value that is not an Error";
  }
  return { name: "Error", message };
}
