"""DVC stage train: fine-tune `train.model` on the pairs stage's pairs (under torchrun when
`runtime.train_processes` > 1: the stage starts itself again, one process per device)."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.training.launch import inside_launcher, run_distributed
from augir.training.pairs import read_pairs
from augir.training.train import is_main_process, train_encoder
from augir.versions import with_versions


def main() -> None:
    params = load_params()
    if params.runtime.train_processes > 1 and not inside_launcher():
        run_distributed(params.runtime.train_processes, [__file__, *sys.argv[1:]])
        return
    stats = train_encoder(read_pairs(layout.PAIRS), params.train, layout.RETRIEVER, log_dir=layout.TRAIN_LOG)
    if is_main_process():
        write_json_atomic(layout.metrics("train"), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(main))
