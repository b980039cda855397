#!/usr/bin/env bash
# import-linter (contracts in pyproject.toml: the stages' import direction, no cycles, nothing in
# the serving path importing eval or training code) over the policyqa package, read from a
# throw-away tree of symlinks that gives it the import layout (scripts/package_tree.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .typecheck
work=$(mktemp -d "$root/.typecheck/imports.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash scripts/package_tree.sh "$work"
cd "$work"
PYTHONPATH="$work" lint-imports --no-cache "$@" "$root/pyproject.toml"
