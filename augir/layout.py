"""Where the DVC pipeline keeps each stage's outputs; dvc.yaml names the same paths."""

import re
from pathlib import Path

from augir.errors import AugirError

# A dataset name becomes a folder name and is pasted into stage commands by dvc.yaml's `foreach`: letters, digits
# and `._-` only, starting with a letter or digit, so it is never a path (`/`, `..`) nor shell syntax (`;`, `$`).
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

RAW = Path("data/raw")
AUGMENTED = Path("data/augmented")
FILTERED = Path("data/filtered")
INFUSED = Path("data/infused")  # new judgments of real training queries (augir.infusion)
AUGMENT_WORK = Path("data/.augment-shards")  # finished batches of an interrupted run; not a DVC output, so a rerun finds them
PAIRS = Path("data/pairs")
RETRIEVER = Path("models/retriever")
JUDGE = Path("models/judge")
TRAIN_LOG = Path("dvclive/train")
INDEX = Path("data/index")
EVAL = Path("data/eval")
METRICS = Path("metrics")
BM25 = "bm25"


def dataset_name_problem(name: object) -> str | None:
    """Why `name` cannot be a dataset name, or None when it can."""
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name) or ".." in name:
        return (f"{name!r} is not a dataset name (letters, digits and . _ - only, starting with a letter or digit, "
                "at most 64 characters, no '..')")
    return None


def checked_name(name: str) -> str:
    problem = dataset_name_problem(name)
    if problem:
        raise AugirError(problem)
    return name


def raw(name: str) -> Path:
    return RAW / checked_name(name)


def index(name: str) -> Path:
    return INDEX / checked_name(name)


def evaluation(name: str) -> Path:
    return EVAL / checked_name(name)


def metrics(name: str) -> Path:
    return METRICS / f"{checked_name(name)}.json"


def encode_metrics(name: str) -> Path:
    return METRICS / "encode" / f"{checked_name(name)}.json"


def bm25_evaluation(name: str) -> Path:
    return EVAL / f"{BM25}-{checked_name(name)}"


def bm25_metrics(name: str) -> Path:
    return METRICS / BM25 / f"{checked_name(name)}.json"
