"""DVC stage augment: synthetic queries for `augment.num_passages` passages of `augment.dataset`."""

import sys

from augir import layout
from augir.augment import AugmentConfig, run_augmentation
from augir.beir import load_beir
from augir.cli import run_cli
from augir.fileio import write_json_atomic
from augir.params import load_params


def main() -> None:
    params = load_params().augment
    config = AugmentConfig(**params.model_dump(exclude={"dataset", "backend"}))
    stats = run_augmentation(load_beir(layout.raw(params.dataset)), config, layout.AUGMENTED, layout.AUGMENT_WORK)
    write_json_atomic(layout.metrics("augment"), stats.to_json_dict())


if __name__ == "__main__":
    sys.exit(run_cli(main))
