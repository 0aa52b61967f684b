// Node adapter (CommonJS): every shared case against the built npm package,
// loaded with `require("sluice")` (the package's "require" condition).
"use strict";
const { after, test } = require("node:test");
const helpers = require("./_cases.cjs");

helpers.requireBuiltPackage();
const lib = require("sluice");
const bundle = helpers.bundleCases("cjs");
after(bundle.cleanup);
const { cases, runCase } = require(bundle.file);

test("node cjs: require('sluice') resolves to npm/script and exports the API", () => {
  for (const name of ["pipeline", "map", "batch", "flatten", "filter", "PipelineError"]) {
    if (typeof lib[name] !== "function") throw new Error(`missing ${name}`);
  }
  const resolved = require.resolve("sluice");
  if (!resolved.endsWith("/npm/script/mod.js")) throw new Error(`resolved to ${resolved}`);
});

for (const c of cases) {
  test(`node cjs: ${c.name}`, async () => {
    helpers.assertCaseResult(await runCase(c, lib));
  });
}
