"""DVC stage infuse: give training queries the passages of the synthetic queries nearest to them (`infuse.method`)."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.infusion.infuse import run_infusion
from augir.params import load_params
from augir.versions import with_versions


def main() -> None:
    params = load_params()
    dataset = load_beir(layout.raw(params.augment.dataset))
    stats = run_infusion(dataset, layout.FILTERED, params.infuse, layout.INFUSED)
    write_json_atomic(layout.metrics("infuse"), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(main))
