#!/usr/bin/env bash
# Every check and test of sluice. Run after `npm ci` (the README's test command
# is `npm ci && npm test`, which runs this file).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0 NO_COLOR=1
DENO=node_modules/.bin/deno
[ -x "$DENO" ] || { echo "deno is missing: run 'npm ci' first" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "format";        "$DENO" fmt --check
step "lint";          "$DENO" lint
step "type check";    "$DENO" check mod.ts tests/ bench/ examples/
step "doc lint";      "$DENO" doc --lint mod.ts
step "publish dry run"; "$DENO" publish --dry-run --allow-dirty 2>&1 | tail -n 3

step "tests (Deno, leak sanitizers on) and doc examples"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$DENO" test --sanitize-ops --sanitize-resources --doc -A mod.ts lib/ tests/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The plain closing line CI counts ("N passed, N failed").
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1 || true)
passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
echo
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
