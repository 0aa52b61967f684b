// A DB bulk-insert batcher: `deno run -A examples/bulk_insert.ts`
//
// Request handlers each save one row; a fake database takes multi-row INSERTs
// (a fixed cost per statement) and refuses rows that break a constraint. The
// Batcher turns the single saves into INSERTs of up to 50 rows, one at a time
// (concurrency 1, as one connection would), waiting at most 20 ms for an
// INSERT to fill. A row the database refuses fails its own caller only.
import { Batcher } from "../mod.ts";

/** A row of the `events` table. */
export interface Row {
  id: number;
  user: string;
}

/** A fake database: one multi-row INSERT at a time, unique `id`s. */
export class FakeDb {
  readonly rows = new Map<number, Row>();
  statements = 0;

  /** Inserts `rows`; returns, per row, its id or the constraint error. */
  async insertMany(
    rows: Row[],
    signal: AbortSignal,
  ): Promise<(number | Error)[]> {
    this.statements++;
    await new Promise((r) => setTimeout(r, 5));
    signal.throwIfAborted();
    return rows.map((row) => {
      if (this.rows.has(row.id)) {
        return new Error(`duplicate key: id ${row.id}`);
      }
      this.rows.set(row.id, row);
      return row.id;
    });
  }
}

/** Saves 200 rows (one of them a duplicate) through the batcher. */
export async function main(): Promise<{
  saved: number;
  refused: string[];
  statements: number;
}> {
  const db = new FakeDb();
  await using inserts = new Batcher(
    (rows: Row[], ctx) => db.insertMany(rows, ctx.signal),
    { maxSize: 50, maxWaitMs: 20, concurrency: 1 },
  );
  const ids = Array.from({ length: 200 }, (_, i) => i === 120 ? 7 : i);
  const saves = ids.map((id) => inserts.process({ id, user: `u${id % 13}` }));
  const settled = await Promise.allSettled(saves);
  return {
    saved: settled.filter((s) => s.status === "fulfilled").length,
    refused: settled.flatMap((s) =>
      s.status === "rejected" ? [(s.reason as Error).message] : []
    ),
    statements: db.statements,
  };
}

if (import.meta.main) {
  const { saved, refused, statements } = await main();
  console.log(
    `${saved} rows saved in ${statements} INSERTs; refused: ${refused}`,
  );
}
