// Browser stage: serves tests/browser/index.html, the npm package's ESM
// bundle and the bundled shared cases from a 127.0.0.1 server started and
// stopped here, loads the page in headless Chromium (Debian's chromium driven
// by playwright-core) and reports every case run in the page as a test.
import { after, test } from "node:test";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  throw new Error(
    `Chromium is missing (${executablePath}): install it with \`apt-get install -y chromium\` (scripts/test.sh does when run as root)`,
  );
}
const { chromium } = await import("playwright-core");

const cases = helpers.bundleCases("esm");
cases.cleanup(); // the code is kept in memory
const files = {
  "/": ["text/html", readFileSync(join(helpers.root, "tests/browser/index.html"))],
  "/sluice.js": ["text/javascript", readFileSync(join(helpers.root, "npm/esm/mod.js"))],
  "/cases.js": ["text/javascript", cases.code],
};
const server = createServer((req, res) => {
  const file = files[new URL(req.url, "http://x").pathname];
  if (!file) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "sluice-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
after(async () => {
  await context.close();
  await new Promise((resolve) => server.close(resolve));
  rmSync(profile, { recursive: true, force: true });
});

const page = context.pages()[0] ?? await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(String(error)));
page.on("console", (msg) => {
  if (msg.type() === "error") pageErrors.push(msg.text());
});
await page.goto(`${origin}/`);
await page.waitForFunction(() => document.title === "ready" || undefined, null, { timeout: 20_000 })
  .catch((error) => {
    throw new Error(`the page did not load the bundle: ${pageErrors.join("\n") || error}`);
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
