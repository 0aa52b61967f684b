// The bundle sizes that scripts/build_npm.ts measures, written into the pages
// that quote them (issue 24: generated figures cannot go stale). A page holds
// them between two markers, which the build fills on every run:
//
//   <!-- sizes -->
//   - …
//   <!-- /sizes -->
//
// The block is a Markdown list whose lines `deno fmt` leaves as they are.

/** The pages whose `<!-- sizes -->` block the build rewrites. */
export const SIZE_PAGES = ["README.md", "docs/runtimes.md"];

/** One measured figure: what was bundled and its minified + gzipped bytes. */
export interface Size {
  /** "sluice", "sluice/threads", … for a whole entry point. */
  entry?: string;
  /** The names imported alone (tree-shaken from the root entry). */
  names?: string[];
  bytes: number;
}

const OPEN = "<!-- sizes -->";
const CLOSE = "<!-- /sizes -->";

/** `1234` → `"1.2 kB"`, as the build prints it. */
export function kB(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} kB`;
}

/** The block's Markdown: one list item per figure. */
export function renderSizes(sizes: Size[]): string {
  const lines = sizes.map((s) => {
    if (s.names) {
      return `- ${s.names.map((n) => `\`${n}\``).join(", ")} alone: ${
        kB(s.bytes)
      }`;
    }
    return s.entry === "sluice"
      ? `- the whole \`sluice\` bundle: ${kB(s.bytes)}`
      : `- \`${s.entry}\`: ${kB(s.bytes)}`;
  });
  return lines.join("\n");
}

/**
 * `text` with its sizes block holding `block`.
 *
 * @throws {SyntaxError} when the page has no block, or more than one.
 */
export function writeSizes(page: string, text: string, block: string): string {
  const start = text.indexOf(OPEN);
  const end = text.indexOf(CLOSE);
  if (start < 0 || end < start || text.indexOf(OPEN, start + 1) >= 0) {
    throw new SyntaxError(
      `${page} must hold one '${OPEN}' … '${CLOSE}' block for the bundle sizes`,
    );
  }
  return `${text.slice(0, start + OPEN.length)}\n\n${block}\n\n${
    text.slice(end)
  }`;
}

/** The figures of a page's sizes block, as written ("13.6 kB", …). */
export function readSizes(page: string, text: string): string[] {
  const start = text.indexOf(OPEN);
  const end = text.indexOf(CLOSE);
  if (start < 0 || end < start) {
    throw new SyntaxError(`${page} has no '${OPEN}' block`);
  }
  return [...text.slice(start, end).matchAll(/\d+\.\d kB/g)].map((m) => m[0]);
}
