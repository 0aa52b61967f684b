// Builds the npm package into npm/, doing what @deno/dnt would (dnt and JSR
// are not reachable here): `deno run -A scripts/build_npm.ts` (`npm run build`).
//
//   npm/package.json   name "sluice", version from deno.json, exports with
//                      types/import/require, sideEffects: false, engines
//   npm/esm/*.js       one self-contained ES module per deno.json export
//                      (esbuild; it also runs as is in browsers and workers)
//   npm/script/*.js    the same as CommonJS (esbuild)
//   npm/types/**.d.ts  declarations (tsc --emitDeclarationOnly)
//   npm/README.md, npm/LICENSE
//
// Then it checks the result, failing the build on any mismatch (as Hono's
// validate-exports does): the JSR and npm export maps name the same entry
// points; every file they point at exists; each entry's runtime exports are
// the same in Deno (the .ts source), the ESM build and the CJS build; and its
// declared exports (values and types) are those of the source. Last, it
// measures the minified + gzipped size of each ESM entry against a budget, and
// writes the figures into the README and docs/runtimes.md (between
// `<!-- sizes -->` markers: scripts/_sizes.ts), so they cannot go stale.
//
// It also links tests/node_modules/sluice to npm/, so that the runtime tests
// in tests/ import `sluice` exactly as an installed package.
import * as esbuild from "esbuild";
import ts from "typescript";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import { renderSizes, type Size, SIZE_PAGES, writeSizes } from "./_sizes.ts";

/**
 * Budget of the root entry's whole ESM bundle, minified + gzipped: 27.8 kB on
 * 2026-12-05 with tracking, live/adaptive concurrency, the dashboards, per-key
 * order and the Batcher's cache (17.9 kB before them); the margin catches a
 * sudden jump, the pipeline-only check below catches leaks.
 */
const SIZE_BUDGET_BYTES = 32 * 1024;
/** The oldest Node the package supports (and the one its tests run on). */
const NODE_ENGINE = ">=20";
/** What every emitted JavaScript file must run on. */
const TARGET = "es2022";
/**
 * Packages an entry imports but the package does not bundle: optional peer
 * dependencies, installed only by those who import that entry
 * (`sluice/bullmq`). The root entry must import none of them.
 */
const OPTIONAL_PEERS: Record<string, string> = {
  bullmq: "^6.7.6",
  ioredis: "^6.1.0",
};

const root = new URL("../", import.meta.url);
const path = (p: string) => new URL(p, root).pathname;
const out = (p = "") => path(`npm/${p}`);

interface DenoJson {
  name: string;
  version: string;
  license: string;
  exports: string | Record<string, string>;
}

const deno: DenoJson = JSON.parse(await Deno.readTextFile(path("deno.json")));
for (const field of ["name", "version", "license", "exports"] as const) {
  if (!deno[field]) fail(`deno.json has no "${field}"`);
}
const jsrExports: Record<string, string> = typeof deno.exports === "string"
  ? { ".": deno.exports }
  : deno.exports;

/** One entry point: its JSR key, source file and the npm files it becomes. */
interface Entry {
  key: string;
  source: string; // "./mod.ts"
  esm: string; // "./esm/mod.js"
  cjs: string; // "./script/mod.js"
  types: string; // "./types/mod.d.ts"
}

const entries: Entry[] = Object.entries(jsrExports).map(([key, source]) => {
  if (!/^\.\/.+\.ts$/.test(source)) {
    fail(`deno.json export "${key}" must be a relative .ts file: ${source}`);
  }
  const stem = source.slice(2, -3); // "mod", "lib/adapters/x"
  return {
    key,
    source,
    esm: `./esm/${stem}.js`,
    cjs: `./script/${stem}.js`,
    types: `./types/${stem}.d.ts`,
  };
});

const t0 = performance.now();
await Deno.remove(out(), { recursive: true }).catch(() => {});
await Deno.mkdir(out(), { recursive: true });

// ---- JavaScript: esbuild -----------------------------------------------------
for (const format of ["esm", "cjs"] as const) {
  const dir = format === "esm" ? "esm" : "script";
  await esbuild.build({
    absWorkingDir: path(""),
    entryPoints: Object.fromEntries(
      entries.map((e) => [e.source.slice(2, -3), e.source]),
    ),
    outdir: out(dir),
    bundle: true,
    format,
    platform: "neutral",
    target: TARGET,
    external: Object.keys(OPTIONAL_PEERS),
    // Keep doc-comment-free but readable output; minification is the
    // consumer's bundler's job.
    legalComments: "none",
    logLevel: "warning",
  });
  // dnt's layout: the folder says how Node reads its .js files.
  await writeJson(`${dir}/package.json`, {
    type: format === "esm" ? "module" : "commonjs",
  });
}

// ---- Declarations: tsc ---------------------------------------------------------
{
  const tsc = new Deno.Command("node", {
    args: [
      path("node_modules/typescript/bin/tsc"),
      ...entries.map((e) => path(e.source)),
      "--declaration",
      "--emitDeclarationOnly",
      "--allowImportingTsExtensions",
      "--outDir",
      out("types"),
      "--rootDir",
      path(""),
      "--target",
      TARGET,
      "--module",
      "nodenext",
      "--lib",
      "es2022,dom,dom.iterable,esnext.disposable",
      "--strict",
      "--skipLibCheck",
      "--pretty",
      "false",
    ],
    stdout: "inherit",
    stderr: "inherit",
  });
  const { success } = await tsc.output();
  if (!success) fail("tsc could not emit the declarations");
  // The sources import "./x.ts"; declarations must say "./x.js".
  for await (const file of walk(out("types"))) {
    const text = await Deno.readTextFile(file);
    const fixed = text.replace(
      /(\bfrom\s*|\bimport\s*\(\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g,
      "$1$2$3.js$2",
    );
    if (fixed !== text) await Deno.writeTextFile(file, fixed);
  }
}

// ---- package.json, README, LICENSE ------------------------------------------
const npmExports = Object.fromEntries(
  entries.map((e) => [e.key, {
    types: e.types,
    import: e.esm,
    require: e.cjs,
    default: e.esm,
  }]),
);
const main = entries.find((e) => e.key === ".");
if (!main) fail('deno.json exports have no root (".") entry');
const pkg = {
  name: "sluice",
  version: deno.version,
  description:
    "Async work on streams: worker pools, multi-stage pipelines, batching and ordered streaming on web-standard APIs (Deno, Node, Bun, Cloudflare Workers, browsers)",
  license: deno.license,
  keywords: [
    "async",
    "pipeline",
    "concurrency",
    "pool",
    "batch",
    "stream",
    "ReadableStream",
    "AbortSignal",
  ],
  sideEffects: false,
  engines: { node: NODE_ENGINE },
  main: main.cjs,
  module: main.esm,
  types: main.types,
  exports: npmExports,
  peerDependencies: OPTIONAL_PEERS,
  peerDependenciesMeta: Object.fromEntries(
    Object.keys(OPTIONAL_PEERS).map((name) => [name, { optional: true }]),
  ),
};
await writeJson("package.json", pkg);
await Deno.copyFile(path("README.md"), out("README.md"));
await Deno.copyFile(path("LICENSE"), out("LICENSE"));
// The guides the README links to (docs/…), so its links work in the package.
await Deno.mkdir(out("docs"), { recursive: true });
for await (const entry of Deno.readDir(path("docs"))) {
  if (entry.isFile && /\.(md|png)$/.test(entry.name)) {
    await Deno.copyFile(path(`docs/${entry.name}`), out(`docs/${entry.name}`));
  }
}
// The browser dashboard: a plain module served as a file, not imported (no
// export key: JSR has none either, both ship it at web/).
await Deno.mkdir(out("web"), { recursive: true });
await Deno.copyFile(
  path("web/sluice-dashboard.js"),
  out("web/sluice-dashboard.js"),
);

// ---- Checks ----------------------------------------------------------------------
const problems: string[] = [];

// 1. Export maps: the same entry points on JSR and npm.
const written = JSON.parse(await Deno.readTextFile(out("package.json")));
const jsrKeys = Object.keys(jsrExports).sort();
const npmKeys = Object.keys(written.exports ?? {}).sort();
if (jsrKeys.join() !== npmKeys.join()) {
  problems.push(
    `export maps differ: deno.json has ${
      jsrKeys.join(", ")
    }; npm/package.json has ${npmKeys.join(", ")}`,
  );
}
const require = createRequire(out("package.json"));
for (const e of entries) {
  const conditions = written.exports[e.key] ?? {};
  for (const condition of ["types", "import", "require"]) {
    const target = conditions[condition];
    if (typeof target !== "string") {
      problems.push(`npm export "${e.key}" has no "${condition}" condition`);
    } else if (!(await exists(out(target.slice(2))))) {
      problems.push(
        `npm export "${e.key}" → ${condition}: ${target} does not exist`,
      );
    }
  }

  // 2. Runtime exports: Deno source = ESM build = CJS build.
  const fromSource = Object.keys(await import(path(e.source))).sort();
  const fromEsm = Object.keys(await import(out(e.esm.slice(2)))).sort();
  const fromCjs = Object.keys(require(out(e.cjs.slice(2)))).sort();
  compare(`${e.key}: runtime exports of ESM build`, fromEsm, fromSource);
  compare(`${e.key}: runtime exports of CJS build`, fromCjs, fromSource);

  // 3. Declared exports (values and types): source = declarations.
  const declared = declaredExports(out(e.types.slice(2)));
  const sourceDeclared = declaredExports(path(e.source));
  compare(`${e.key}: declared exports of ${e.types}`, declared, sourceDeclared);
  const missingTypes = fromSource.filter((n) => !declared.includes(n));
  if (missingTypes.length) {
    problems.push(`${e.key}: no declaration for ${missingTypes.join(", ")}`);
  }
}
if (problems.length) {
  fail(`the npm package is inconsistent:\n- ${problems.join("\n- ")}`);
}

// 4. Size: minified + gzipped ESM bundle of each entry.
const sizes: string[] = [];
/** The figures written into the pages that quote them (scripts/_sizes.ts). */
const figures: Size[] = [];
const warnings: string[] = [];
for (const e of entries) {
  const code = await Deno.readTextFile(out(e.esm.slice(2)));
  const min = await esbuild.transform(code, {
    minify: true,
    format: "esm",
    target: TARGET,
  });
  const gz = gzipSync(min.code, { level: 9 }).length;
  sizes.push(
    `${e.esm}: ${kB(code.length)} → minified ${kB(min.code.length)} → gzipped ${
      kB(gz)
    }`,
  );
  figures.push({
    entry: e.key === "." ? "sluice" : `sluice/${e.key.slice(2)}`,
    bytes: gz,
  });
  if (e.key === ".") {
    const peers = Object.keys(OPTIONAL_PEERS).filter((name) =>
      new RegExp(`from\\s*["']${name}["']|require\\(["']${name}["']\\)`)
        .test(code)
    );
    if (peers.length) {
      fail(
        `the core bundle imports the optional peer ${
          peers.join(", ")
        }: only an extra entry (sluice/bullmq) may`,
      );
    }
  }
  if (e.key === "." && gz > SIZE_BUDGET_BYTES) {
    fail(
      `the core bundle is ${kB(gz)} minified + gzipped, over its budget of ${
        kB(SIZE_BUDGET_BYTES)
      }`,
    );
  }
}
// What an application pays for what it imports, tree-shaken by a bundler
// (the package has no side effects), and which source files that pulls in:
// a pipeline-only import should not carry the Pool, the Batcher or SSE.
const rootExports = Object.keys(await import(out(main.esm.slice(2))));
for (
  const names of [
    ["pipeline", "map", "batch", "flatten", "filter"],
    ["Pool", "asCompleted"],
    ["Batcher"],
    ["toSSE", "SSE_HEADERS"],
  ]
) {
  if (!names.every((n) => rootExports.includes(n))) continue;
  const shaken = await esbuild.build({
    stdin: {
      contents: `export { ${names.join(", ")} } from "./mod.js";`,
      resolveDir: out("esm"),
    },
    bundle: true,
    minify: true,
    write: false,
    format: "esm",
    target: TARGET,
    logLevel: "warning",
  });
  const gz = gzipSync(shaken.outputFiles[0].contents, { level: 9 }).length;
  sizes.push(`import { ${names.join(", ")} }: ${kB(gz)} minified + gzipped`);
  figures.push({ names, bytes: gz });
  if (names[0] === "pipeline") {
    const fromSource = await esbuild.build({
      stdin: {
        contents: `export { ${names.join(", ")} } from "./mod.ts";`,
        resolveDir: path(""),
        loader: "ts",
      },
      bundle: true,
      write: false,
      metafile: true,
      format: "esm",
      logLevel: "warning",
    });
    const pulled = Object.values(fromSource.metafile.outputs)
      .flatMap((o) => Object.entries(o.inputs))
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([file]) => file)
      .filter((file) =>
        /lib\/(pool|_pool_\w+|batcher|_batcher_\w+|sse|dashboard|_dashboard_\w+|progress_wire)\.ts$/
          .test(file)
      );
    if (pulled.length) {
      problems.push(
        `a pipeline-only import still carries ${
          pulled.join(", ")
        }: a top-level statement there is not tree-shakeable (a computed class key held in a variable, or a call without /* @__PURE__ */)`,
      );
    }
  }
}
esbuild.stop();
if (problems.length) {
  fail(`the npm package does not tree-shake:\n- ${problems.join("\n- ")}`);
}

// ---- The sizes in the docs ---------------------------------------------------
// Written by every build, so that they cannot go stale: the root bundle and
// the imports alone first, then the other entry points.
const writtenPages: string[] = [];
{
  const order = (s: Size) => s.entry === "sluice" ? 0 : s.names ? 1 : 2;
  const block = renderSizes(
    figures.map((s, i) => ({ s, i }))
      .sort((a, b) => order(a.s) - order(b.s) || a.i - b.i)
      .map(({ s }) => s),
  );
  for (const page of SIZE_PAGES) {
    const text = await Deno.readTextFile(path(page));
    let next: string;
    try {
      next = writeSizes(page, text, block);
    } catch (error) {
      fail((error as Error).message);
    }
    if (next !== text) {
      // On CI (a clean clone of a commit) a figure that changed means the
      // commit carries stale ones: fail instead of fixing the copy.
      if (Deno.env.get("CI") === "true") {
        fail(
          `${page} quotes bundle sizes that differ from this build's: run \`npm run build\` and commit ${page}`,
        );
      }
      await Deno.writeTextFile(path(page), next);
      writtenPages.push(page);
    }
  }
  // The package's README is the one with the figures of this build.
  await Deno.copyFile(path("README.md"), out("README.md"));
}

// ---- Link for the runtime tests -----------------------------------------------
await Deno.mkdir(path("tests/node_modules"), { recursive: true });
await Deno.remove(path("tests/node_modules/sluice")).catch(() => {});
await Deno.symlink("../../npm", path("tests/node_modules/sluice"));

console.log(
  `npm/: sluice@${deno.version}, exports ${
    npmKeys.join(", ")
  } (JSR and npm agree; ` +
    `ESM, CJS and declarations export the same names) in ${
      Math.round(performance.now() - t0)
    } ms`,
);
for (const line of sizes) console.log(`size ${line}`);
if (writtenPages.length) {
  console.log(`sizes: wrote the new figures into ${writtenPages.join(", ")}`);
}
for (const line of warnings) console.log(`warning: ${line}`);

// ---- helpers -------------------------------------------------------------------

function fail(message: string): never {
  console.error(`build_npm: ${message}`);
  esbuild.stop();
  Deno.exit(1);
}

function compare(what: string, actual: string[], expected: string[]): void {
  const missing = expected.filter((n) => !actual.includes(n));
  const extra = actual.filter((n) => !expected.includes(n));
  if (missing.length || extra.length) {
    problems.push(
      `${what}: ${missing.length ? `missing ${missing.join(", ")}` : ""}${
        missing.length && extra.length ? "; " : ""
      }${extra.length ? `unexpected ${extra.join(", ")}` : ""}`,
    );
  }
}

/** The names a module declares as exports (values and types), via tsc. */
function declaredExports(file: string): string[] {
  const program = ts.createProgram([file], {
    allowImportingTsExtensions: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.esnext.disposable.d.ts"],
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const symbol = source && checker.getSymbolAtLocation(source);
  if (!symbol) fail(`tsc cannot read ${file}`);
  return checker.getExportsOfModule(symbol).map((s) => s.getName()).sort();
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const p = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(p);
    else if (entry.isFile) yield p;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function writeJson(p: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(out(p), JSON.stringify(value, null, 2) + "\n");
}

function kB(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} kB`;
}
