#!/usr/bin/env bash
# mypy (strict, configured in pyproject.toml) over the policyqa package.
# The subpackages live in top-level folders mapped by setuptools package-dir; mypy does not
# follow that mapping, so a throw-away tree of symlinks gives it the import layout. Each run
# gets its own tree, so concurrent runs don't pull it from under each other.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .typecheck
work=$(mktemp -d "$root/.typecheck/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/policyqa"
for f in policyqa/*.py policyqa/py.typed; do ln -s "$root/$f" "$work/policyqa/$(basename "$f")"; done
for d in corpus index retriever api ui eval; do ln -s "$root/$d" "$work/policyqa/$d"; done
cd "$work"
mypy --config-file "$root/pyproject.toml" --cache-dir "$root/.typecheck/mypy-cache" -p policyqa "$@"
