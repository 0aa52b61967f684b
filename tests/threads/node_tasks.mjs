// tasks.mjs for Node and bundles: the same tasks, with `roundTrip` taking
// `transfer()` from the built package (`sluice/threads`, npm/) instead of
// threads.ts, which Node 20 cannot import.
import { transfer } from "sluice/threads";

export * from "./tasks.mjs";

/** The buffer's byte length, and the buffer itself back, moved. */
export function roundTrip(buffer) {
  return transfer({ bytes: buffer.byteLength, buffer }, [buffer]);
}
