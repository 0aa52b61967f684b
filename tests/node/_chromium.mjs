// Headless Chromium (Debian's chromium, driven by playwright-core) on a page
// served from a 127.0.0.1 server: shared by the browser stages. The server,
// the browser and its profile are closed after the test file.
import { after } from "node:test";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Serves `files` (path → [content type, body]), opens "/" and waits until the
 * page sets its title to "ready". `pageErrors` collects the page's uncaught
 * errors (and its console errors, with `consoleErrors`).
 */
export async function openPage(files, { name, consoleErrors = false }) {
  const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium is missing (${executablePath}): install it with \`apt-get install -y chromium\` (scripts/test.sh does when run as root)`,
    );
  }
  const { chromium } = await import("playwright-core");
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;

  const profile = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
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
  if (consoleErrors) {
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(msg.text());
    });
  }
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.title === "ready" || undefined, null, { timeout: 20_000 })
    .catch((error) => {
      throw new Error(`the page did not load: ${pageErrors.join("\n") || error}`);
    });
  return { page, pageErrors, origin };
}
