"""DVC stage train: fine-tune `train.model` on the pairs stage's pairs."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.training.pairs import read_pairs
from augir.training.train import train_encoder
from augir.versions import with_versions


def main() -> None:
    params = load_params()
    stats = train_encoder(read_pairs(layout.PAIRS), params.train, layout.RETRIEVER, log_dir=layout.TRAIN_LOG)
    write_json_atomic(layout.metrics("train"), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(main))
