"""A load timed in a fresh Python process, as every `dvc repro` stage is one, for the load benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_in_fresh_process(script: str, args: list[str], cache: Path, what: str) -> dict:
    """`script --child *args` with the weights cache at `cache`: its last stdout line (JSON), the process's seconds."""
    env = {**os.environ, "AUGIR_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, script, "--child", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{what} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result
