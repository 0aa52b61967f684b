// TypeScript consumer: type-checks tests/consumer/ (a project depending on
// `sluice`, resolved to npm/ through tests/node_modules) against the
// declarations of the built package, and checks that a deliberate type error
// is reported where it is made, and nowhere else.
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import helpers from "./_cases.cjs";

helpers.requireBuiltPackage();
const dir = join(helpers.root, "tests/consumer");
const tsc = join(helpers.root, "node_modules/typescript/bin/tsc");

function typecheck(config) {
  const r = spawnSync(process.execPath, [tsc, "-p", join(dir, config), "--pretty", "false"], {
    cwd: helpers.root,
    encoding: "utf8",
  });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

for (const [config, what] of [
  ["tsconfig.json", "a Node ESM + CJS project (NodeNext, @types/node, no DOM lib, skipLibCheck off)"],
  ["tsconfig.bundler.json", "a bundler project (Bundler resolution, DOM lib, skipLibCheck off)"],
]) {
  test(`consumer: ${what} type-checks against npm/ (${config})`, () => {
    const { status, output } = typecheck(config);
    if (status !== 0) throw new Error(`tsc -p ${config} failed:\n${output}`);
  });
}

test("consumer: tsc reports the deliberate type errors of bad.ts on their lines and nowhere else", () => {
  const expected = readFileSync(join(dir, "bad.ts"), "utf8").split("\n")
    .flatMap((line, i) => (line.includes("// expect-error") ? [i + 1] : []));
  if (expected.length < 3) throw new Error("bad.ts lost its expect-error markers");
  const { status, output } = typecheck("tsconfig.bad.json");
  if (status === 0) throw new Error("tsc accepted bad.ts: the declarations do not constrain callers");
  const reported = [...output.matchAll(/^(.*?)\((\d+),\d+\): error (TS\d+)/gm)];
  const elsewhere = reported.filter((m) => !m[1].endsWith("bad.ts"));
  if (elsewhere.length) throw new Error(`errors outside bad.ts:\n${output}`);
  const lines = [...new Set(reported.map((m) => Number(m[2])))].sort((a, b) => a - b);
  if (lines.join() !== expected.join()) {
    throw new Error(`expected errors on lines ${expected.join(", ")}, got ${lines.join(", ")}:\n${output}`);
  }
});
