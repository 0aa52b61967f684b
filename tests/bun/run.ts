// Bun adapter: runs every shared case (tests/cross/, TypeScript run as is by
// Bun) against the built npm package, loaded both as `import "sluice"` and as
// `require("sluice")`, and prints one JSON report on stdout for
// tests/node/bun.test.mjs. Run: `bun run tests/bun/run.ts`.
import * as imported from "sluice";
import { cases, type Lib, runCase } from "../cross/all.ts";

declare const require: (id: string) => unknown;
declare const Bun: { version: string };

const required = require("sluice") as Lib;
const resolved = {
  import: import.meta.resolve("sluice"),
  require: (require as unknown as { resolve(id: string): string }).resolve(
    "sluice",
  ),
};

const results = [];
for (
  const [how, lib] of [["import", imported], ["require", required]] as const
) {
  for (const c of cases) {
    results.push({
      how,
      ...(await runCase(c, lib as Lib)),
    });
  }
}
console.log(JSON.stringify({ bun: Bun.version, resolved, results }));
