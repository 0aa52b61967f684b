// The shape of lib/: types live with their owners, so no module imports
// itself back through others (type-only imports included).
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** Every .ts file under `dir` (relative to the project root). */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, root))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await tsFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** `from "./x.ts"` of `file`, resolved against the project root. */
function relativeImports(file: string, text: string): string[] {
  const dir = file.slice(0, file.lastIndexOf("/") + 1);
  const found: string[] = [];
  for (const m of text.matchAll(/(?:import|export)[^;]*?from\s+"(\.[^"]+)"/g)) {
    found.push(new URL(m[1], new URL(dir, root)).href.slice(root.href.length));
  }
  return found;
}

/** The strongly connected components of more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("lib/ and the entry points have no import cycles, type-only imports included", async () => {
  const files = [
    ...await tsFiles("lib"),
    "mod.ts",
    "threads.ts",
    "bullmq.ts",
    "cloudflare.ts",
  ];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, root));
    graph.set(file, relativeImports(file, text));
  }
  assert.ok(graph.size > 40, `only ${graph.size} modules found`);
  assert.deepEqual(cycles(graph), []);
});

Deno.test("the import-cycle check finds a cycle through a type-only import", () => {
  const graph = new Map([
    ["a.ts", relativeImports("lib/a.ts", 'import { b } from "./b.ts";')],
    ["b.ts", relativeImports("lib/b.ts", 'import type { A } from "./a.ts";')],
  ]);
  const named = new Map(
    [...graph].map(([k, v]) => [`lib/${k}`, v]),
  );
  assert.deepEqual(cycles(named), [["lib/a.ts", "lib/b.ts"]]);
});
