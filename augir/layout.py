"""Where the DVC pipeline keeps each stage's outputs; dvc.yaml names the same paths."""

from pathlib import Path

RAW = Path("data/raw")
AUGMENTED = Path("data/augmented")
FILTERED = Path("data/filtered")
INFUSED = Path("data/infused")  # new judgments of real training queries (augir.infusion)
AUGMENT_WORK = Path("data/.augment-shards")  # finished batches of an interrupted run; not a DVC output, so a rerun finds them
RETRIEVER = Path("models/retriever")
TRAIN_LOG = Path("dvclive/train")
INDEX = Path("data/index")
EVAL = Path("data/eval")
METRICS = Path("metrics")
BM25 = "bm25"


def raw(name: str) -> Path:
    return RAW / name


def index(name: str) -> Path:
    return INDEX / name


def evaluation(name: str) -> Path:
    return EVAL / name


def metrics(name: str) -> Path:
    return METRICS / f"{name}.json"


def bm25_evaluation(name: str) -> Path:
    return EVAL / f"{BM25}-{name}"


def bm25_metrics(name: str) -> Path:
    return METRICS / BM25 / f"{name}.json"
