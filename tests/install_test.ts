// The README's Install route, as a user runs it today (issue 24: the package
// is not on npm yet): build the package, `npm pack` it, install the tarball
// into a fresh project outside this repository (offline: it has no
// dependencies), then import and require it from Node. In that project, the
// ts/js blocks of README.md and docs/*.md are type-checked once more as a
// Node 20 project: strict, no DOM lib, @types/node, against the installed
// package's declarations (where `res.json()` is `unknown`).
import assert from "node:assert/strict";
import {
  allBlocks,
  type Block,
  fileName,
  kindOf,
  mapBack,
  pageDir,
  source,
} from "./_snippets.ts";

const root = new URL("../", import.meta.url);
const repo = root.pathname.replace(/\/$/, "");
const decoder = new TextDecoder();

async function sh(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<string> {
  const { success, code, stdout, stderr } = await new Deno.Command(cmd, {
    args,
    cwd,
    env: {
      NO_COLOR: "1",
      RUST_BACKTRACE: "0",
      npm_config_update_notifier: "false",
    },
    signal: AbortSignal.timeout(180_000),
  }).output();
  const out = decoder.decode(stdout) + decoder.decode(stderr);
  assert(
    success,
    `${cmd} ${args.join(" ")} (in ${cwd}) exited with ${code}:\n${out}`,
  );
  return out;
}

Deno.test("install: build, npm pack, npm install the tarball in a fresh project, import and require it from Node; the doc blocks type-check there", async (t) => {
  const { version } = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  const tarball = `sluice-${version}.tgz`;
  const readme = await Deno.readTextFile(new URL("README.md", root));
  assert(
    readme.includes(`npm install ../sluice/npm/${tarball}`),
    `the README's Install does not name ${tarball}`,
  );

  const project = await Deno.makeTempDir({ prefix: "sluice-install-" });
  try {
    await t.step("npm run build", async () => {
      await sh(Deno.execPath(), ["run", "-A", "scripts/build_npm.ts"], repo);
    });
    await t.step(`npm pack in npm/ → ${tarball}`, async () => {
      const out = await sh(
        "npm",
        ["pack", "--pack-destination", project, "--silent"],
        `${repo}/npm`,
      );
      assert.equal(out.trim().split("\n").at(-1), tarball);
    });
    await t.step("npm install the tarball into a fresh project", async () => {
      await Deno.writeTextFile(
        `${project}/package.json`,
        JSON.stringify({ name: "app", private: true, type: "module" }),
      );
      await sh("npm", [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        `./${tarball}`,
      ], project);
      const pkg = JSON.parse(
        await Deno.readTextFile(`${project}/node_modules/sluice/package.json`),
      );
      assert.equal(pkg.version, version);
    });
    await t.step("import and require it from Node", async () => {
      await Deno.writeTextFile(
        `${project}/app.mjs`,
        `import { batch, map, pipeline } from "sluice";
import { ThreadPool } from "sluice/threads";
const out = await pipeline(map(async (x) => x * 2, { concurrency: 2 }), batch({ maxSize: 2 }))
  .run([1, 2, 3]).collect();
if (JSON.stringify(out) !== "[[2,4],[6]]") throw new Error(JSON.stringify(out));
if (typeof ThreadPool !== "function") throw new Error("no ThreadPool");
console.log("esm ok");
`,
      );
      await Deno.writeTextFile(
        `${project}/app.cjs`,
        `const { pipeline, map } = require("sluice");
pipeline(map((x) => x + 1)).run([1]).collect().then((r) => {
  if (r[0] !== 2) throw new Error(String(r));
  console.log("cjs ok");
});
`,
      );
      assert.match(await sh("node", ["app.mjs"], project), /esm ok/);
      assert.match(await sh("node", ["app.cjs"], project), /cjs ok/);
    });
    await t.step(
      "the doc blocks type-check as a Node 20 project without the DOM lib",
      async () => {
        // The project's own dev tools: this repository's copies.
        for (const dep of ["typescript", "@types/node", "hono"]) {
          const to = `${project}/node_modules/${dep}`;
          await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), {
            recursive: true,
          });
          await Deno.symlink(`${repo}/node_modules/${dep}`, to);
        }
        const blocks = (await allBlocks(root)).filter((b) =>
          kindOf(b.lang) === "code" && !b.denoOnly
        );
        const written = new Map<string, Block>();
        for (const b of blocks) {
          const rel = `${pageDir(b.doc)}/${fileName(b)}`;
          written.set(rel, b);
          await Deno.mkdir(`${project}/${pageDir(b.doc)}`, { recursive: true });
          await Deno.writeTextFile(`${project}/${rel}`, source(b));
        }
        await Deno.writeTextFile(
          `${project}/tsconfig.json`,
          JSON.stringify({
            compilerOptions: {
              target: "ES2022",
              lib: ["ES2022", "ESNext.Disposable"],
              types: ["node"],
              module: "NodeNext",
              moduleResolution: "NodeNext",
              strict: true,
              noEmit: true,
              allowJs: true,
              checkJs: true,
              allowImportingTsExtensions: true,
              skipLibCheck: true,
            },
            files: [...written.keys()],
          }),
        );
        const tsc = await new Deno.Command("node", {
          args: [
            `${project}/node_modules/typescript/bin/tsc`,
            "-p",
            project,
            "--pretty",
            "false",
          ],
          cwd: project,
          signal: AbortSignal.timeout(180_000),
        }).output();
        const out = decoder.decode(tsc.stdout) + decoder.decode(tsc.stderr);
        assert(
          tsc.success,
          `tsc (Node 20 project, no DOM lib) on the doc blocks:\n${
            mapBack(
              out.replaceAll(
                /^(\w+\/[\w.-]+\.(?:ts|js))\((\d+),(\d+)\)/gm,
                "/$1:$2:$3",
              ),
              written,
            )
          }`,
        );
      },
    );
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});
