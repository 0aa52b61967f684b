#!/usr/bin/env bash
# Every check and test of sluice. Run after `npm ci` (the README's test command
# is `npm ci && npm test`, which runs this file).
#
#   1. Deno: format, lint, type check, doc lint, JSR publish dry run, and the
#      test suite (leak sanitizers on) with the doc examples and the shared
#      cross-runtime cases (tests/cross/) against mod.ts.
#   2. npm build (scripts/build_npm.ts): npm/ with ESM, CJS and declarations;
#      fails when the JSR and npm export maps disagree or the size is over budget.
#   3. One `node --test` run against the built package, whose closing lines CI
#      counts: the shared cases on Node (import and require), a TypeScript
#      consumer project, Bun, workerd (Miniflare) and headless Chromium. Each
#      stage fails loudly when its runtime is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0 NO_COLOR=1
DENO=node_modules/.bin/deno
[ -x "$DENO" ] || { echo "deno is missing: run 'npm ci' first" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }
started=$SECONDS

step "format";        "$DENO" fmt --check
step "lint";          "$DENO" lint
step "type check";    "$DENO" check mod.ts tests/ bench/ examples/ scripts/
step "doc lint";      "$DENO" doc --lint mod.ts threads.ts bullmq.ts cloudflare.ts
step "publish dry run"; "$DENO" publish --dry-run --allow-dirty 2>&1 | tail -n 3

step "tests (Deno, leak sanitizers on), doc examples and the cross-runtime cases"
log=$(mktemp)
tap=$(mktemp)
trap 'rm -f "$log" "$tap"' EXIT
set +e
"$DENO" test --sanitize-ops --sanitize-resources --doc -A mod.ts lib/ tests/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The plain closing line of the Deno stage ("N passed, N failed").
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1 || true)
passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
echo
echo "${passed:-0} passed, ${failed:-0} failed"
[ "$status" -eq 0 ] || exit "$status"

step "build the npm package (npm/)"
"$DENO" run -A scripts/build_npm.ts

step "Chromium for the browser stage"
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing ($chromium) and this is not root with apt-get:" \
      "install Debian's chromium package (or set CHROMIUM_PATH)" >&2
    exit 1
  fi
fi
"$chromium" --version 2>/dev/null | head -n 1 || true

step "Redis for the remote-stage tests (sluice/bullmq)"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's redis-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing and this is not root with apt-get:" \
      "install Debian's redis-server package" >&2
    exit 1
  fi
fi
redis-server --version | head -n 1

step "runtimes against npm/: Node $(node --version) (ESM, CJS), TypeScript consumer, Bun, workerd, Chromium; the Hono SSE examples on Deno, Node, Bun, workerd, Chromium"
# Spec output to the terminal; TAP to a file, whose closing lines ("# pass N",
# "# fail N") are printed last for CI.
set +e
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  tests/node/esm.test.mjs \
  tests/node/cjs.test.cjs \
  tests/node/consumer.test.mjs \
  tests/node/bun.test.mjs \
  tests/node/workerd.test.mjs \
  tests/node/chromium.test.mjs \
  tests/node/threads.test.mjs \
  tests/node/threads.test.cjs \
  tests/node/threads_bun.test.mjs \
  tests/node/threads_workerd.test.mjs \
  tests/node/cloudflare.test.mjs \
  tests/node/threads_chromium.test.mjs \
  tests/node/bullmq.test.mjs \
  tests/node/demo_output.test.mjs \
  tests/node/demo_cluster.test.mjs \
  tests/node/dashboard.test.mjs \
  tests/hono/run.mjs
status=$?
set -e
echo
echo "all stages done in $((SECONDS - started)) s; node --test summary:"
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$tap" | tail -n 8
exit "$status"
