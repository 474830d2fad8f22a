"""DVC stage train: fine-tune `train.model` on the first `train.real_pairs` real, `train.augmented_pairs` synthetic
and `train.infused_pairs` infused pairs."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.training.pairs import first_pairs, infused_pairs, real_pairs, synthetic_pairs
from augir.training.train import train_encoder
from augir.versions import with_versions


def main() -> None:
    params = load_params()
    real = [pair for name in params.train.datasets for pair in real_pairs(load_beir(layout.raw(name)), name)]
    pairs = first_pairs(real, params.train.real_pairs, "train.real_pairs")
    augmented_corpus = load_beir(layout.raw(params.augment.dataset))
    pairs += synthetic_pairs(layout.FILTERED, augmented_corpus, params.train.augmented_pairs)
    pairs += infused_pairs(layout.INFUSED, augmented_corpus, params.train.infused_pairs)
    stats = train_encoder(pairs, params.train, layout.RETRIEVER, log_dir=layout.TRAIN_LOG)
    write_json_atomic(layout.metrics("train"), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(main))
