// Bun runner of the shared ThreadPool cases (tests/threads/cases.mjs) against
// the built npm package, loaded as `import "sluice/threads"` and as
// `require("sluice/threads")`; prints one JSON report on stdout for
// tests/node/threads_bun.test.mjs. Run: `bun run tests/threads/bun_run.mjs`.
import { createRequire } from "node:module";
import * as imported from "sluice/threads";
import * as core from "sluice";
import { runAll } from "./cases.mjs";

const require = createRequire(import.meta.url);
const required = require("sluice/threads");
const tasks = new URL("./node_tasks.mjs", import.meta.url);
const resolved = {
  import: import.meta.resolve("sluice/threads"),
  require: require.resolve("sluice/threads"),
};
const results = [];
for (const [how, lib] of [["import", imported], ["require", required]]) {
  for (const result of await runAll({ ...core, ...lib }, tasks, "bun")) {
    results.push({ how, ...result });
  }
}
// A TypeScript task module runs as it is (Bun runs TypeScript).
{
  const threads = new imported.ThreadPool(
    new URL("./tasks.ts", import.meta.url),
    {
      size: 1,
    },
  );
  const name = "ThreadPool runs a TypeScript task module as it is";
  try {
    const got = [
      await threads.run("square", 7),
      await threads.run("words", { text: "a b" }),
    ];
    const ok = JSON.stringify(got) === JSON.stringify([49, ["a", "b"]]);
    results.push({
      how: "import",
      name,
      ok,
      error: ok ? undefined : JSON.stringify(got),
    });
  } catch (error) {
    results.push({
      how: "import",
      name,
      ok: false,
      error: String(error?.stack ?? error),
    });
  } finally {
    await threads.close();
  }
}
console.log(JSON.stringify({ bun: Bun.version, resolved, results }));
