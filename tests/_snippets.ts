// The code blocks of README.md and docs/*.md, for tests/snippets_test.ts and
// tests/install_test.ts (issue 24: every code block is run or type-checked).
//
// Conventions, written as HTML comments on the lines just before a fence
// (blank lines between them are allowed; GitHub shows none of them):
//
//   <!-- run -->            the block is also run (`deno run -A`): it must be
//                           self-contained, need no network, Redis or input,
//                           and end by itself.
//   <!-- file: tasks.ts --> the block is written under that name, so later
//                           blocks of the same page can import "./tasks.ts".
//   <!-- prelude            TypeScript put before the block, unseen: the
//   declare function f(): …;  declarations of the reader's own helpers the
//   -->                      block calls (`declare …`), or stand-ins for them
//                           in a block that runs. Keep it to those.
//   <!-- deno-only -->      the block uses Deno's APIs (`Deno.serve`, …):
//                           not type-checked as a Node project.
//
// Languages: ts/typescript and js/javascript blocks are type-checked with
// `deno check` against this checkout (the import map of deno.json: "sluice"
// is ./mod.ts, "sluice/threads" ./threads.ts, …; "hono" the npm package) and,
// unless deno-only, with tsc as a Node 20 project without the DOM lib against
// the packed npm package (tests/install_test.ts). sh blocks are not run: the
// `npm run` scripts they name must exist and the files they name must be
// there. text, html, json and toml blocks are output or configuration
// (json is parsed).

/** One fenced code block of a page. */
export interface Block {
  /** The page, relative to the repository root ("docs/pool.md"). */
  doc: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word, lower-cased ("ts", "sh", ""). */
  lang: string;
  /** The block's text, its indentation (inside a list item) taken off. */
  code: string;
  run: boolean;
  denoOnly: boolean;
  prelude: string;
  /** A `<!-- file: name -->` directive. */
  file?: string;
}

/** What a language is checked as. */
export type Kind = "code" | "sh" | "json" | "other";

const KINDS: Record<string, Kind> = {
  ts: "code",
  typescript: "code",
  js: "code",
  javascript: "code",
  sh: "sh",
  bash: "sh",
  shell: "sh",
  json: "json",
  text: "other",
  "": "other",
  html: "other",
  toml: "other",
};

/** The kind of a block's language; undefined for one without a decision. */
export function kindOf(lang: string): Kind | undefined {
  return KINDS[lang];
}

/** Whether a block is TypeScript or JavaScript (for the file extension). */
export function isJs(lang: string): boolean {
  return lang === "js" || lang === "javascript";
}

/** The fenced code blocks of a Markdown page, with their directives. */
export function extractBlocks(doc: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = lines[j].trim();
      if (close.startsWith(fence) && /^[`~]+$/.test(close)) break;
      body.push(
        lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j],
      );
    }
    if (j === lines.length) {
      throw new SyntaxError(`${doc}:${i + 1}: a code fence is never closed`);
    }
    const block: Block = {
      doc,
      line: i + 1,
      lang: info.toLowerCase(),
      code: body.join("\n") + "\n",
      run: false,
      denoOnly: false,
      prelude: "",
    };
    for (const directive of directivesBefore(lines, i)) {
      if (directive === "run") block.run = true;
      else if (directive === "deno-only") block.denoOnly = true;
      else if (directive.startsWith("file:")) {
        block.file = directive.slice(5).trim();
      } else if (/^prelude\b/.test(directive)) {
        block.prelude += directive.replace(/^prelude:?/, "").trim() + "\n";
      }
    }
    blocks.push(block);
    i = j;
  }
  return blocks;
}

/** The HTML comments just before line `fence` (blank lines skipped). */
function directivesBefore(lines: string[], fence: number): string[] {
  const found: string[] = [];
  let k = fence - 1;
  for (;;) {
    while (k >= 0 && lines[k].trim() === "") k--;
    if (k < 0 || !lines[k].trim().endsWith("-->")) return found;
    let start = k;
    while (start >= 0 && !lines[start].includes("<!--")) start--;
    if (start < 0) return found;
    const comment = lines.slice(start, k + 1).join("\n");
    found.push(
      comment.slice(comment.indexOf("<!--") + 4, comment.lastIndexOf("-->"))
        .trim(),
    );
    k = start - 1;
  }
}

/** The pages whose blocks are checked: README.md and docs/*.md. */
export async function pages(root: URL): Promise<string[]> {
  const docs: string[] = [];
  for await (const entry of Deno.readDir(new URL("docs/", root))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      docs.push(`docs/${entry.name}`);
    }
  }
  return ["README.md", ...docs.sort()];
}

/** Every block of every page. */
export async function allBlocks(root: URL): Promise<Block[]> {
  const blocks: Block[] = [];
  for (const doc of await pages(root)) {
    blocks.push(
      ...extractBlocks(doc, await Deno.readTextFile(new URL(doc, root))),
    );
  }
  return blocks;
}

/** A block's file name in its page's folder: its `file:` name or `L<line>`. */
export function fileName(block: Block): string {
  return block.file ?? `L${block.line}.${isJs(block.lang) ? "js" : "ts"}`;
}

/** The folder of a page's files: "docs/pool.md" → "docs_pool". */
export function pageDir(doc: string): string {
  return doc.replace(/\.md$/, "").replace(/[^\w]+/g, "_");
}

/** The source written for a block: its prelude, then the block. */
export function source(block: Block): string {
  const pragma = isJs(block.lang) ? "// @ts-check\n" : "";
  return pragma + block.prelude + block.code;
}

/** Lines before the block's first line in {@linkcode source}. */
export function offset(block: Block): number {
  return (isJs(block.lang) ? 1 : 0) +
    (block.prelude ? block.prelude.split("\n").length - 1 : 0);
}

/**
 * Maps "<dir>/<page>/<file>:<line>:<col>" in a checker's output back to
 * "<page>.md:<line>" for each block written; lines in a prelude say so.
 */
export function mapBack(
  output: string,
  written: Map<string, Block>,
): string {
  return output.replace(
    /(?:file:\/\/)?[^\s'"()]*?\/(\w+\/[\w.-]+\.(?:ts|js))[:(](\d+)[:,](\d+)\)?/g,
    (whole, rel: string, line: string) => {
      const block = written.get(rel);
      if (!block) return whole;
      const l = Number(line) - offset(block);
      return l >= 1
        ? `${block.doc}:${block.line + l}`
        : `${block.doc}:${block.line} (its prelude, line ${line})`;
    },
  );
}
