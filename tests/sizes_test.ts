// The bundle sizes in the docs are written by the build (scripts/_sizes.ts,
// called by scripts/build_npm.ts on every `npm test`): these check the writer
// and that the pages keep a block for it.
import assert from "node:assert/strict";
import {
  readSizes,
  renderSizes,
  SIZE_PAGES,
  writeSizes,
} from "../scripts/_sizes.ts";

const root = new URL("../", import.meta.url);
const figures = [
  { entry: "sluice", bytes: 28_467 },
  { names: ["pipeline", "map"], bytes: 13_926 },
  { entry: "sluice/threads", bytes: 7_168 },
];

Deno.test("writeSizes() replaces what is between the markers, and only that", () => {
  const page =
    "before\n<!-- sizes -->\n- stale: 1.0 kB\n<!-- /sizes -->\nafter\n";
  const next = writeSizes("p.md", page, renderSizes(figures));
  assert.equal(
    next,
    "before\n<!-- sizes -->\n\n- the whole `sluice` bundle: 27.8 kB\n" +
      "- `pipeline`, `map` alone: 13.6 kB\n- `sluice/threads`: 7.0 kB\n\n" +
      "<!-- /sizes -->\nafter\n",
  );
  assert.equal(writeSizes("p.md", next, renderSizes(figures)), next);
  assert.deepEqual(readSizes("p.md", next), ["27.8 kB", "13.6 kB", "7.0 kB"]);
});

Deno.test("writeSizes() refuses a page without one block", () => {
  assert.throws(() => writeSizes("p.md", "no block", "x"), SyntaxError);
  const two = "<!-- sizes --><!-- /sizes --><!-- sizes --><!-- /sizes -->";
  assert.throws(() => writeSizes("p.md", two, "x"), /one '<!-- sizes -->'/);
});

Deno.test("renderSizes() writes what deno fmt leaves as it is", async () => {
  const text = writeSizes(
    "p.md",
    "# t\n\n<!-- sizes -->\n<!-- /sizes -->\n",
    renderSizes(figures),
  );
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = fmt.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { stdout } = await fmt.output();
  assert.equal(new TextDecoder().decode(stdout), text);
});

Deno.test("README.md and docs/runtimes.md hold the build's sizes block", async () => {
  for (const page of SIZE_PAGES) {
    const text = await Deno.readTextFile(new URL(page, root));
    const sizes = readSizes(page, text);
    // the whole bundle, four imports alone, three other entry points
    assert.equal(sizes.length, 8, `${page}: ${sizes.join(", ")}`);
  }
});
