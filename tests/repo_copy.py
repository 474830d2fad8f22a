"""For integration tests that run real git and DVC in a copy of this repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = ("metrics/", "dvclive/", "reports/", "results/")


def copy_repository(target: Path) -> Path:
    """Tracked and untracked-not-ignored files, without this checkout's results: what a fresh clone holds."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (REPO / name).is_file() and not name.startswith(RESULTS) and name != "dvc.lock":
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, stdout_only: bool = False,
        pythonpath: Path | None = None) -> str:
    """Run a command, failing the test with its output if it fails. `python` on PATH is this environment's."""
    if env is None:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if pythonpath is not None:
        # Stages then import the copy's own `augir` (the code DVC hashes as their dependencies).
        env = {**env, "PYTHONPATH": str(pythonpath)}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout if stdout_only else result.stdout + result.stderr


def commit_repository(repo: Path, message: str = "small") -> None:
    """`git init` and one commit of everything: DVC needs a git repository, and experiments need a commit."""
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], repo)
