// Deno adapter of the shared cross-runtime cases (tests/cross/): each case is
// one Deno.test against mod.ts, under the leak sanitizers of scripts/test.sh.
import * as lib from "../mod.ts";
import { cases } from "./cross/all.ts";
import { within } from "./cross/_check.ts";

for (const c of cases) {
  Deno.test(`cross: ${c.name}`, () => within(c.run(lib), 10_000, c.name));
}
