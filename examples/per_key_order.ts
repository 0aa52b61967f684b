// Per-key order: balance updates applied per account in the order they came,
// accounts in parallel. `deno run examples/per_key_order.ts`
import { map, pipeline } from "../mod.ts";

interface Update {
  account: string;
  amount: number;
}

/** Applies the updates; returns each account's balances as they moved. */
export async function main(
  updates: readonly Update[],
): Promise<Record<string, number[]>> {
  const balances = new Map<string, number>();
  const history: Record<string, number[]> = {};
  const apply = map(async (u: Update) => {
    // A read-modify-write that would race if one account's updates overlapped.
    const before = balances.get(u.account) ?? 0;
    await new Promise((r) => setTimeout(r, 1 + (u.amount % 3)));
    balances.set(u.account, before + u.amount);
    (history[u.account] ??= []).push(before + u.amount);
    return u;
  }, { concurrency: 8, key: (u) => u.account });
  await pipeline(apply).run(updates).collect();
  return history;
}

if (import.meta.main) {
  const updates = Array.from({ length: 12 }, (_, i) => ({
    account: ["alice", "bob", "carol"][i % 3],
    amount: i + 1,
  }));
  console.log(await main(updates));
}
