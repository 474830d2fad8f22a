"""DVC stage augment: synthetic queries for `augment.num_passages` passages of `augment.dataset`."""

import sys

from augir import layout
from augir.augmentation.augment import load_for_augmentation, run_augmentation
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.sharing.published import import_augmented
from augir.versions import with_versions


def main() -> None:
    all_params = load_params()
    params = all_params.augment
    if params.source:  # an existing set (a `dvc import`ed registry version, or the hub): validated, not generated
        stats = import_augmented(params.source, load_beir(layout.raw(params.dataset)).corpus, layout.AUGMENTED)
        write_json_atomic(layout.metrics("augment"), with_versions(stats))
        return
    dataset = load_for_augmentation(layout.raw(params.dataset), params)  # texts of the chosen passages only
    stats = run_augmentation(dataset, params, layout.AUGMENTED, layout.AUGMENT_WORK, runtime=all_params.runtime)
    write_json_atomic(layout.metrics("augment"), with_versions(stats.to_json_dict()))


if __name__ == "__main__":
    sys.exit(run_cli(main))
