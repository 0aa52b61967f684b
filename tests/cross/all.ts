// Every shared case, from every case file: what each runtime adapter runs.
import { cases as core } from "./cases.ts";
import { cases as batcher } from "./cases_batcher.ts";
import { cases as pool } from "./cases_pool.ts";
import { cases as sse } from "./cases_sse.ts";
import { cases as watch } from "./cases_watch.ts";
import { cases as parity } from "./cases_parity.ts";
import type { Case } from "./_check.ts";

export { type Case, type CaseResult, type Lib, runCase } from "./_check.ts";

/** All cases, in a stable order; names are unique. */
export const cases: Case[] = [
  ...core,
  ...pool,
  ...batcher,
  ...sse,
  ...watch,
  ...parity,
];

const names = new Set<string>();
for (const c of cases) {
  if (names.has(c.name)) throw new Error(`duplicate case name: ${c.name}`);
  names.add(c.name);
}
