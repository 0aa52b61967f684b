// Every code block of README.md and docs/*.md is checked (issue 24); the
// conventions are in tests/_snippets.ts. ts/js blocks are type-checked with
// `deno check` against this checkout and run when marked `<!-- run -->`; sh
// blocks name npm scripts and files that exist; the README's set-up commands
// are the ones CI runs; every guide is linked from the front page and every
// relative link resolves. (tests/install_test.ts type-checks the same blocks as
// a Node project against the packed npm package.) SNIPPETS_VERBOSE=1 prints
// what each run printed.
import assert from "node:assert/strict";
import {
  allBlocks,
  type Block,
  extractBlocks,
  fileName,
  kindOf,
  mapBack,
  pageDir,
  pages,
  source,
} from "./_snippets.ts";

const root = new URL("../", import.meta.url);
const DENO = Deno.execPath();
const blocks = await allBlocks(root);
const code = blocks.filter((b) => kindOf(b.lang) === "code");
const sh = blocks.filter((b) => kindOf(b.lang) === "sh");

Deno.test("extractBlocks() reads fences, their indentation and directives", () => {
  const page = [
    "text",
    "<!-- run -->",
    "<!-- prelude",
    "declare const x: number;",
    "-->",
    "",
    "```ts",
    "x;",
    "```",
    "- item:",
    "  <!-- file: tasks.ts -->",
    "  ```js",
    "  export const y = 1;",
    "  ```",
    "```sh",
    "npm test",
    "```",
  ].join("\n");
  const [a, b, c] = extractBlocks("p.md", page);
  assert.deepEqual(
    [a.line, a.lang, a.code, a.run, a.prelude],
    [7, "ts", "x;\n", true, "declare const x: number;\n"],
  );
  assert.deepEqual([b.lang, b.code, b.file, b.run], [
    "js",
    "export const y = 1;\n",
    "tasks.ts",
    false,
  ]);
  assert.deepEqual([c.lang, c.code, c.run], ["sh", "npm test\n", false]);
  assert.throws(() => extractBlocks("p.md", "```ts\nx"), /never closed/);
});

Deno.test("README.md and docs/*.md: every code block's language is checked or declared output", () => {
  const counts: Record<string, number> = {};
  for (const b of blocks) {
    const kind = kindOf(b.lang);
    assert(
      kind,
      `${b.doc}:${b.line}: a \`\`\`${b.lang} block: no decision how to check it (tests/_snippets.ts)`,
    );
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (kind === "json") JSON.parse(b.code);
    if (b.run) assert.equal(kind, "code", `${b.doc}:${b.line}: run what?`);
  }
  assert(code.length >= 20, `only ${code.length} ts/js blocks found`);
  console.log(
    `${blocks.length} blocks: ${counts.code} ts/js (${
      code.filter((b) => b.run).length
    } run), ${counts.sh} sh, ${
      (counts.other ?? 0) + (counts.json ?? 0)
    } output or configuration`,
  );
});

Deno.test("README.md and docs/*.md: every ts/js block type-checks, and those marked run run", async (t) => {
  const dir = await Deno.makeTempDir({
    dir: root.pathname,
    prefix: ".snippets-",
  });
  try {
    const written = new Map<string, Block>();
    for (const b of code) {
      const rel = `${pageDir(b.doc)}/${fileName(b)}`;
      assert(!written.has(rel), `${b.doc}:${b.line}: ${rel} written twice`);
      written.set(rel, b);
      await Deno.mkdir(`${dir}/${pageDir(b.doc)}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/${rel}`, source(b));
    }
    const check = await new Deno.Command(DENO, {
      args: [
        "check",
        "--quiet",
        ...[...written.keys()].map((r) => `${dir}/${r}`),
      ],
      cwd: root.pathname,
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    }).output();
    const out = new TextDecoder().decode(check.stderr) +
      new TextDecoder().decode(check.stdout);
    assert(
      check.success,
      `deno check of the doc blocks:\n${mapBack(out, written)}`,
    );

    for (const b of code.filter((b) => b.run)) {
      await t.step(`${b.doc}:${b.line} runs`, async () => {
        const run = await new Deno.Command(DENO, {
          args: [
            "run",
            "-A",
            "--quiet",
            `${dir}/${pageDir(b.doc)}/${fileName(b)}`,
          ],
          cwd: root.pathname,
          env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
          signal: AbortSignal.timeout(60_000),
        }).output();
        const err = new TextDecoder().decode(run.stderr);
        if (Deno.env.get("SNIPPETS_VERBOSE")) {
          console.log(new TextDecoder().decode(run.stdout) + err);
        }
        assert(
          run.success,
          `${b.doc}:${b.line} exited with ${run.code}:\n${
            mapBack(err, written)
          }`,
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README.md and docs/*.md: sh blocks name npm scripts and files that exist", async () => {
  const scripts = JSON.parse(
    await Deno.readTextFile(new URL("package.json", root)),
  ).scripts as Record<string, string>;
  for (const b of sh) {
    for (const [, name] of b.code.matchAll(/\bnpm run ([\w:-]+)/g)) {
      assert(
        name in scripts,
        `${b.doc}:${b.line}: \`npm run ${name}\`: package.json has no such script`,
      );
    }
    // Files a command writes (--outfile=, --outdir=) need not exist yet.
    const outputs = [...b.code.matchAll(/--out(?:file|dir)=(\S+)/g)].map((m) =>
      m[1]
    );
    for (
      const [, path] of b.code.matchAll(
        /(?:^|[\s=])((?:examples|bench|scripts|tests|web|docs)\/[\w./-]+\.\w+)/gm,
      )
    ) {
      if (outputs.includes(path)) continue;
      const exists = await Deno.stat(new URL(path, root)).then(
        () => true,
        () => false,
      );
      assert(exists, `${b.doc}:${b.line}: ${path} does not exist`);
    }
  }
});

Deno.test("README.md: the set-up commands are the demo and exactly what .ci/run runs", async () => {
  const ci = (await Deno.readTextFile(new URL(".ci/run", root)))
    .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .at(-1)!;
  const readme = blocks.filter((b) => b.doc === "README.md" && b.lang === "sh");
  const lines = readme.flatMap((b) => b.code.split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim());
  assert(
    lines.includes(ci),
    `the README shows no \`${ci}\` (.ci/run's command)`,
  );
  assert(lines.includes("npm ci && npm run demo"), "no demo command");
});

Deno.test("README.md links every guide in docs/, and every relative link resolves", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  for (const doc of (await pages(root)).filter((d) => d !== "README.md")) {
    assert(readme.includes(`](${doc})`), `README.md does not link ${doc}`);
  }
  for (const doc of await pages(root)) {
    const text = await Deno.readTextFile(new URL(doc, root));
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target) || target.startsWith("#")) continue;
      const path = target.split("#")[0];
      if (path === "docs/api/index.html") continue; // generated: npm run docs
      const url = new URL(path, new URL(doc, root));
      const exists = await Deno.stat(url).then(() => true, () => false);
      assert(exists, `${doc}: the link to ${target} leads nowhere`);
    }
  }
});
