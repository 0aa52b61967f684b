// The parts of the Workers runtime that sluice/cloudflare uses, as structural
// types: the real bindings (`Queue`, `DurableObjectNamespace`,
// `MessageBatch`, `DurableObjectState` of @cloudflare/workers-types) fit them,
// and so do the in-memory fakes of a unit test. Public types only.

/**
 * A queue producer binding (`[[queues.producers]]` in `wrangler.toml`): what
 * {@linkcode remote} sends its calls to. Cloudflare's `Queue` fits it.
 */
export interface QueueProducer {
  /** Sends one message. */
  send(body: unknown, options?: { contentType?: string }): Promise<unknown>;
  /** Sends up to 100 messages (256 KB in all) at once. */
  sendBatch(
    messages: Iterable<{ body: unknown; contentType?: string }>,
  ): Promise<unknown>;
}

/** A stub of a Durable Object: what its namespace's `get(id)` returns. */
export interface RunStub {
  /** Sends a request to the object. */
  fetch(request: Request): Promise<Response>;
}

/**
 * A Durable Object namespace binding (`[[durable_objects.bindings]]`) of a
 * {@linkcode SluiceRun} class: one object per run, named by its run id.
 * Cloudflare's `DurableObjectNamespace` fits it.
 */
export interface RunNamespace {
  /** The id of the object named `name`. */
  idFromName(name: string): unknown;
  /** The stub of the object `id`. */
  // deno-lint-ignore no-explicit-any
  get(id: any): RunStub;
}

/** One message of a {@linkcode QueueBatch}. Cloudflare's `Message` fits it. */
export interface QueueMessage {
  /** The message's id, unique within the queue. */
  readonly id: string;
  /** What was sent. */
  readonly body: unknown;
  /** How many times it was delivered, this time included (from 1). */
  readonly attempts: number;
  /** Marks it done: it is not delivered again, whatever the batch does. */
  ack(): void;
  /** Delivers it again later (after `delaySeconds`), up to `max_retries`. */
  retry(options?: { delaySeconds?: number }): void;
}

/**
 * What a queue consumer's `queue(batch, env, ctx)` handler receives.
 * Cloudflare's `MessageBatch` fits it.
 */
export interface QueueBatch {
  /** The queue's name. */
  readonly queue: string;
  /** The messages, at most `max_batch_size`. */
  readonly messages: readonly QueueMessage[];
}

/**
 * The storage API of a Durable Object (its key-value methods).
 * Cloudflare's `DurableObjectStorage` fits it.
 */
export interface RunStorage {
  /** The value stored at `key`. */
  get(key: string): Promise<unknown>;
  /** Stores `entries` (at most 128 per call). */
  put(entries: Record<string, unknown>): Promise<void>;
  /** The entries whose keys start with `options.prefix`. */
  list(options: { prefix: string }): Promise<Map<string, unknown>>;
}

/**
 * The state a Durable Object's constructor receives.
 * Cloudflare's `DurableObjectState` fits it.
 */
export interface RunObjectState {
  /** The object's storage. */
  readonly storage: RunStorage;
  /** Runs `fn` before any request reaches the object. */
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}
