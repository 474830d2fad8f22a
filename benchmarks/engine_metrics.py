"""The default run end to end with each generation engine: do its queries change the test metrics?

For each engine (the default transformers path, CTranslate2 float32, CTranslate2 int8) the committed pipeline runs
in its own clone of HEAD (`dvc exp run -S ...`, DVC's cache shared with this checkout so that stages whose
inputs did not change are restored from the run-cache, not rerun). Reported per engine: the raw completions
identical to the default's, out of all of them; the queries kept after clean-up; generation
seconds and tokens; and every test metric of `metrics/semanlink.json`, with its difference to the default's.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python benchmarks/engine_metrics.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
ENGINES = {
    "transformers": [],
    "ctranslate2-float32": ["augment.backend=ctranslate2", "augment.ctranslate2.compute_type=float32"],
    "ctranslate2-int8": ["augment.backend=ctranslate2", "augment.ctranslate2.compute_type=int8"],
}
MEASURES = ("ndcg_at_10", "recall_at_100", "mrr_at_10")


def _run(command: list[str], cwd: Path) -> None:
    """`command` in `cwd` with this checkout's environment, importing the clone's augir (not the editable one)."""
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(cwd)}
    subprocess.run(command, cwd=cwd, check=True, env=env)


def run_engine(name: str, overrides: list[str], work: Path) -> Path:
    """The default pipeline with `overrides`, in a fresh clone of HEAD at `work/name`."""
    folder = work / name
    _run(["git", "clone", "--quiet", str(REPO), str(folder)], work)
    _run(["dvc", "cache", "dir", "--local", str(REPO / ".dvc" / "cache")], folder)
    _run(["dvc", "exp", "run", *[arg for override in overrides for arg in ("-S", override)]], folder)
    return folder


def completions(folder: Path) -> dict[str, str]:
    """Query id -> the generator's raw completion (before clean-up), from the augmented set's provenance."""
    with (folder / "data" / "augmented" / "provenance.jsonl").open(encoding="utf-8") as lines:
        return {record["query_id"]: record["raw"] for record in map(json.loads, lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--work", type=Path, help="a new folder for the clones (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "engine_metrics.json")
    parser.add_argument("--keep", action="store_true", help="keep the clones")
    args = parser.parse_args()

    names = args.engines.split(",")
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; use {', '.join(ENGINES)}")
    if args.work is None:
        args.work = Path(tempfile.mkdtemp(prefix="augir-engine-metrics-"))
    elif args.work.exists():
        parser.error(f"--work: {args.work} exists; give a new folder (this script deletes it when done)")
    else:
        args.work.mkdir(parents=True)
    rows, reference = {}, None
    for name in names:
        folder = run_engine(name, ENGINES[name], args.work)
        metrics = json.loads((folder / "metrics" / "semanlink.json").read_text())
        augment = json.loads((folder / "metrics" / "augment.json").read_text())
        raw = completions(folder)
        reference = reference or raw
        rows[name] = {
            "overrides": ENGINES[name],
            "completions_identical_to_first": sum(raw.get(query) == text for query, text in reference.items()),
            "completions": len(reference),
            "queries_kept": len((folder / "data" / "augmented" / "queries.jsonl").read_text().splitlines()),
            # of the shards augment generated in that run (resumed ones are not counted): not per-engine totals
            **{key: augment.get(key) for key in ("generation_seconds", "prompt_tokens", "cached_prompt_tokens",
                                                  "new_tokens", "tokens_per_second")},
            "test": {key: metrics[key] for key in MEASURES},
        }
        print(name, json.dumps(rows[name]), flush=True)
    first = rows[names[0]]["test"]
    for row in rows.values():
        row["test_difference_to_first"] = {key: row["test"][key] - first[key] for key in MEASURES}
    result = {"commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                       check=True).stdout.strip(),
              "dataset": "semanlink", "engines": rows, "cpus": len(os.sched_getaffinity(0)),
              "load_average": list(os.getloadavg())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
