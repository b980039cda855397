#!/usr/bin/env bash
# mypy (strict, configured in pyproject.toml) over the policyqa package, in a throw-away tree of
# symlinks that gives it the import layout (scripts/package_tree.sh). Each run gets its own tree,
# so concurrent runs don't pull it from under each other.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .typecheck
work=$(mktemp -d "$root/.typecheck/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash scripts/package_tree.sh "$work"
cd "$work"
mypy --config-file "$root/pyproject.toml" --cache-dir "$root/.typecheck/mypy-cache" -p policyqa "$@"
