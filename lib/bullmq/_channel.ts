// The pub/sub channel on which `remote` asks the workers of a queue to stop a
// job (BullMQ has no cross-process cancel); the message is the job id.

/** The cancel channel of queue `name` under BullMQ key `prefix`. */
export function cancelChannel(prefix: string, name: string): string {
  return `${prefix}:${name}:sluice:cancel`;
}

/** Job data as `remote` writes it and `serve` reads it. */
export interface JobData {
  /** The item, encoded by the codec. */
  item: string;
  /** The item's id in its run (`ctx.itemId`), as a string. */
  itemId: string;
}
