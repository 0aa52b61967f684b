// ThreadPool on Node (CommonJS): the shared cases (tests/threads/cases.mjs)
// against the built npm package, loaded with `require("sluice/threads")` (the
// package's "require" condition, npm/script/threads.js).
"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { pathToFileURL } = require("node:url");
const { join } = require("node:path");
const helpers = require("./_cases.cjs");

helpers.requireBuiltPackage();
const threadsLib = require("sluice/threads");
const lib = { ...threadsLib, ...require("sluice") };
const tasks = pathToFileURL(join(helpers.root, "tests/threads/node_tasks.mjs"));

test("node cjs: require('sluice/threads') resolves to npm/script/threads.js", () => {
  assert.ok(require.resolve("sluice/threads").endsWith("/npm/script/threads.js"));
  for (const name of ["ThreadPool", "ThreadError", "transfer"]) {
    assert.equal(typeof threadsLib[name], "function", name);
  }
});

const loaded = import("../threads/cases.mjs");
test("node cjs: the shared ThreadPool cases", async (t) => {
  const { cases } = await loaded;
  for (const c of cases) {
    await t.test(`node cjs: ${c.name}`, () => c.run(lib, tasks));
  }
});
