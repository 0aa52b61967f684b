// Redis clients for `serve` and `remote`. BullMQ's ES module build cannot load
// ioredis itself from plain options (it needs `require`), so sluice makes the
// clients, with the settings each role needs, and closes them.
import { Redis, type RedisOptions } from "ioredis";
import { show } from "../_validate.ts";

/**
 * Where Redis is, as ioredis options: the usual ones below, and any other
 * ioredis option, passed on as is.
 */
export interface RedisConnectionOptions {
  /**
   * Host name or address.
   * @default {"localhost"}
   */
  host?: string;
  /**
   * TCP port.
   * @default {6379}
   */
  port?: number;
  /** ACL user name. */
  username?: string;
  /** Password. */
  password?: string;
  /**
   * Database number.
   * @default {0}
   */
  db?: number;
  /** TLS options (Node's `tls.connect` options); set for TLS. */
  tls?: Record<string, unknown>;
  /** Any other ioredis option. */
  [option: string]: unknown;
}

/**
 * Where Redis is: a `redis://` (or `rediss://`) URL, or ioredis options.
 * sluice makes its own clients from it and sets what each role needs
 * (`maxRetriesPerRequest`, `enableOfflineQueue`, `lazyConnect`).
 */
export type RedisConnection = string | RedisConnectionOptions;

/** Throws a `TypeError` unless `value` is a `RedisConnection`. */
export function assertConnection(value: unknown): void {
  if (
    typeof value !== "string" && (typeof value !== "object" || value === null)
  ) {
    throw new TypeError(
      `'connection' must be a redis:// URL or ioredis options: current value is ${
        show(value)
      }`,
    );
  }
}

/** Where `connection` points, for error messages. */
export function describeConnection(connection: RedisConnection): string {
  if (typeof connection === "string") {
    return connection.replace(/\/\/[^@/]*@/, "//");
  }
  return `${connection.host ?? "localhost"}:${connection.port ?? 6379}`;
}

/**
 * A client that BullMQ only copies (a `Worker` or `QueueEvents` duplicates
 * the client it is given for its blocking commands): it never connects
 * itself, and each copy gets `onError` and is passed to `onCopy` (to watch
 * its connection, and to disconnect it at the end).
 */
export function template(
  connection: RedisConnection,
  settings: RedisOptions,
  onError: (error: Error) => void,
  onCopy: (copy: Redis) => void,
): Redis {
  const client = connect(
    connection,
    { ...settings, lazyConnect: true },
    onError,
  );
  const duplicate = client.duplicate;
  client.duplicate = (override?: Partial<RedisOptions>) => {
    const copy = duplicate.call(client, override);
    copy.on("error", onError);
    onCopy(copy);
    return copy;
  };
  return client;
}

/**
 * A new client for `connection`, with `settings` on top; its `error` events go
 * to `onError` (ioredis would print them otherwise).
 */
export function connect(
  connection: RedisConnection,
  settings: RedisOptions,
  onError: (error: Error) => void,
): Redis {
  const client = typeof connection === "string"
    ? new Redis(connection, settings)
    : new Redis({ ...connection, ...settings } as RedisOptions);
  client.on("error", onError);
  return client;
}
