// A DataLoader-style user loader: `deno run -A examples/batcher_cache.ts`
//
// Resolvers of one request ask for users one by one; a fake database serves
// them with one `WHERE id IN (…)` query per batch. The Batcher shares one
// item between the calls for the same id (`key`), remembers each user
// (`cache`: a later call answers at once), takes users a list query already
// returned (`prime`), and forgets a user after an update (`clear`).
import { Batcher } from "../mod.ts";

interface User {
  id: number;
  name: string;
  managerId: number | null;
}

/** What a resolver asks for: a user, and which resolver asks (for logs). */
interface UserRequest {
  id: number;
  from: string;
}

/** The fake database: 10 users; 4..10 are managed by user `id % 3 + 1`. */
const table = new Map<number, User>(
  Array.from({ length: 10 }, (_, i) => {
    const id = i + 1;
    return [id, {
      id,
      name: `user ${id}`,
      managerId: id <= 3 ? null : id % 3 + 1,
    }];
  }),
);

export async function main(log: (line: string) => void = console.log): Promise<{
  queries: number[][];
  managers: string[];
  cacheHits: number;
  deduped: number;
  renamed: string;
  missing: string;
}> {
  const queries: number[][] = [];
  /** `SELECT * FROM users WHERE id IN (…)`: one result per id, in order. */
  async function selectUsers(reqs: UserRequest[]): Promise<(User | Error)[]> {
    const ids = reqs.map((r) => r.id);
    queries.push(ids);
    await new Promise((r) => setTimeout(r, 5));
    return ids.map((id) => table.get(id) ?? new Error(`no user ${id}`));
  }

  // Two requests for one id are different objects: `key` says they are the
  // same user.
  await using users = new Batcher(selectUsers, {
    maxSize: 100,
    key: (req) => req.id,
    cache: true,
  });

  // A list query returned users 1..3 already: no need to load them again.
  for (const id of [1, 2, 3]) users.prime(id, table.get(id)!);

  // Users 4..10 in one query (user 7, asked for twice, once), then each
  // one's manager: managers 1..3 were primed, so no query at all.
  const [, ...staff] = await Promise.all([
    users.process({ id: 7, from: "search" }),
    ...[4, 5, 6, 7, 8, 9, 10].map((id) => users.process({ id, from: "staff" })),
  ]);
  const managers = await Promise.all(
    staff.map(async (u) => {
      const boss = await users.process({ id: u.managerId!, from: "manager" });
      return `${u.name} → ${boss.name}`;
    }),
  );
  for (const line of managers) log(line);

  // User 4 is renamed: forget the cached copy, then load it again.
  table.set(4, { ...table.get(4)!, name: "user four" });
  users.clear(4);
  const renamed = (await users.process({ id: 4, from: "profile" })).name;
  log(`after clear(4): ${renamed}`);

  // Two resolvers ask for a missing user in one tick: one item, and the
  // failure reaches both callers (and is not cached).
  const [missing] = await Promise.all([
    users.process({ id: 99, from: "a" }).then((u) => u.name, (e) => e.message),
    users.process({ id: 99, from: "b" }).then((u) => u.name, (e) => e.message),
  ]);
  log(`user 99: ${missing}`);

  const { cacheHits, deduped } = users.stats();
  log(
    `${queries.length} queries: ${
      JSON.stringify(queries)
    }; ${cacheHits} cache hits, ${deduped} deduped`,
  );
  return { queries, managers, cacheHits, deduped, renamed, missing };
}

if (import.meta.main) await main();
