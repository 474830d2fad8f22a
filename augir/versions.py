"""The versions of the libraries that decide a stage's results, recorded beside its metrics."""

from __future__ import annotations

from importlib import metadata

# What generates, trains, encodes and orchestrates; vllm is None where it is not installed (CPU machines).
TRACKED = ("augir", "torch", "transformers", "sentence-transformers", "vllm", "dvc")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in TRACKED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def with_versions(record: dict) -> dict:
    """A metrics record with the library versions that made it (`dvc exp show` lists them beside the numbers)."""
    return {**record, "versions": library_versions()}
