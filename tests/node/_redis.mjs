// A private Redis for the tests: Debian's redis-server on a free 127.0.0.1
// port, persistence off, in a temp dir; stopped at the end (node:test `after`,
// and on process exit, including a failure).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const REDIS = process.env.REDIS_SERVER ?? "redis-server";

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a PING on 127.0.0.1:port answers PONG (within `ms`). */
export async function waitForPing(port, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.setTimeout(500);
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.once("data", (d) => {
        socket.destroy();
        resolve(String(d).startsWith("+PONG"));
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING within ${ms} ms`);
}

/**
 * Starts redis-server; returns `{ port, url, stop(), restart() }`. `stop()`
 * ends it (SIGTERM, then SIGKILL) and waits; `restart()` stops it and starts
 * a fresh one (empty) on the same port.
 */
export async function startRedis() {
  if (spawnSync(REDIS, ["--version"]).error) {
    throw new Error(
      `${REDIS} is missing: install Debian's redis-server (scripts/test.sh does, as root)`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "sluice-redis-"));
  const port = await freePort();
  let child;
  const kill = () => child?.exitCode === null && child.kill("SIGKILL");
  process.once("exit", kill);

  async function start() {
    child = spawn(REDIS, [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--save", "",
      "--appendonly", "no",
      "--dir", dir,
      "--protected-mode", "yes",
    ], { stdio: ["ignore", "ignore", "inherit"] });
    await waitForPing(port);
  }

  async function stop() {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once("exit", resolve));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      process.removeListener("exit", kill);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
