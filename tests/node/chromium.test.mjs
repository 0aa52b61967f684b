// Browser stage: serves tests/browser/index.html, the npm package's ESM
// bundle and the bundled shared cases from a 127.0.0.1 server started and
// stopped here, loads the page in headless Chromium (Debian's chromium driven
// by playwright-core) and reports every case run in the page as a test.
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import helpers from "./_cases.cjs";
import { openPage } from "./_chromium.mjs";

helpers.requireBuiltPackage();

const cases = helpers.bundleCases("esm");
cases.cleanup(); // the code is kept in memory
const files = {
  "/": ["text/html", readFileSync(join(helpers.root, "tests/browser/index.html"))],
  "/sluice.js": ["text/javascript", readFileSync(join(helpers.root, "npm/esm/mod.js"))],
  "/cases.js": ["text/javascript", cases.code],
};
const { page, pageErrors } = await openPage(files, {
  name: "chromium",
  consoleErrors: true,
});
const userAgent = await page.evaluate(() => navigator.userAgent);
const version = userAgent.match(/(?:Headless)?Chrome\/[\d.]+/)?.[0] ?? userAgent;
const names = await page.evaluate(() => globalThis.sluiceTests.names);

test(`chromium: the page imports npm/esm/mod.js as one file (${version})`, async () => {
  const exported = await page.evaluate(async () => Object.keys(await import("/sluice.js")));
  for (const name of ["pipeline", "map", "batch", "flatten", "filter", "PipelineError"]) {
    if (!exported.includes(name)) throw new Error(`missing ${name}`);
  }
});

names.forEach((name, i) => {
  test(`chromium: ${name}`, async () => {
    helpers.assertCaseResult(await page.evaluate((i) => globalThis.sluiceTests.run(i), i));
  });
});

test("chromium: no page error or console error during the run", () => {
  if (pageErrors.length) throw new Error(pageErrors.join("\n"));
});
