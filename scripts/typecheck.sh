#!/usr/bin/env bash
# mypy (strict, configured in pyproject.toml) over the policyqa package.
# The subpackages live in top-level folders mapped by setuptools package-dir; mypy does not
# follow that mapping, so a throw-away tree of symlinks gives it the import layout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rm -rf .typecheck && mkdir -p .typecheck/policyqa
for f in policyqa/*.py policyqa/py.typed; do ln -s "$root/$f" ".typecheck/policyqa/$(basename "$f")"; done
for d in corpus index retriever api ui eval; do ln -s "$root/$d" ".typecheck/policyqa/$d"; done
cd .typecheck
exec mypy --config-file "$root/pyproject.toml" -p policyqa "$@"
