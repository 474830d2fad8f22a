import torch
import transformers

from augir.versions import TRACKED, library_versions, with_versions


def test_the_versions_are_those_installed():
    versions = library_versions()
    assert tuple(versions) == TRACKED
    assert versions["torch"] == torch.__version__ and versions["transformers"] == transformers.__version__
    assert with_versions({"ndcg_at_10": 0.5}) == {"ndcg_at_10": 0.5, "versions": versions}


def test_a_library_that_is_not_installed_is_none(monkeypatch):
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: real("pip") if name != "vllm" else real("no-such-package-x"))
    assert library_versions()["vllm"] is None
