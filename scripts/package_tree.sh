#!/usr/bin/env bash
# Build the import layout of the policyqa package in DIR (a tree of symlinks): the subpackages
# live in top-level folders mapped by setuptools package-dir, which mypy and import-linter do not
# follow. Usage: bash scripts/package_tree.sh DIR   (DIR/policyqa is created)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out/policyqa"
for f in "$root"/policyqa/*.py "$root"/policyqa/py.typed; do ln -s "$f" "$out/policyqa/$(basename "$f")"; done
# the top-level folders of the card, each one stage of policyqa (see pyproject.toml package-dir)
for d in corpus index retriever answer api ui eval train; do
    if [ -d "$root/$d" ]; then ln -s "$root/$d" "$out/policyqa/$d"; fi
done
