// Node adapter (ES modules): every shared case against the built npm package,
// loaded as `import "sluice"` (tests/node_modules/sluice → npm/, so the
// package's "import" condition is what resolves).
import { after, test } from "node:test";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const lib = await import("sluice");
const bundle = helpers.bundleCases("esm");
after(bundle.cleanup);
const { cases, runCase } = await import(bundle.file);

test("node esm: import 'sluice' resolves to npm/esm and exports the API", () => {
  for (const name of ["pipeline", "map", "batch", "flatten", "filter", "PipelineError"]) {
    if (typeof lib[name] !== "function") throw new Error(`missing ${name}`);
  }
  if (!import.meta.resolve("sluice").endsWith("/npm/esm/mod.js")) {
    throw new Error(`resolved to ${import.meta.resolve("sluice")}`);
  }
});

for (const c of cases) {
  test(`node esm: ${c.name}`, async () => {
    helpers.assertCaseResult(await runCase(c, lib));
  });
}
