"""Data-parallel training for real: two CPU processes under torchrun (gloo), against one process.

`train.batch_size` is the global batch: split across the processes, each process's queries scored against the
passages of the whole batch (gathered across devices), gradients averaged. So two processes must train the model
one process trains on the same pairs, up to float rounding; without the gathering they do not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from augir.data.beir import BeirDataset, Document, write_beir
from augir.params import TrainParams
from augir.training.launch import torchrun_command
from augir.training.pairs import real_pairs
from augir.training.train import train_encoder

WORDS = ("light water sugar oxygen gravity moon tides iron rust magma lava ash insulin glucose blood cells "
         "bacteria vaccine immune pathogen plants carbon spacetime hormone").split()
PAIRS = 16
BATCH = 8  # two steps of 8, each split 4 + 4 over two processes


def _dataset() -> BeirDataset:
    corpus, queries, train = {}, {}, {}
    for i in range(PAIRS):
        words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(6)]
        corpus[f"d{i}"] = Document(f"d{i}", words[0], " ".join(words))
        queries[f"q{i}"] = " ".join(words[1:4])
        train[f"q{i}"] = {f"d{i}": 1}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"train": train, "test": {"q0": {"d0": 1}}})


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp") / "toy"
    write_beir(_dataset(), folder)
    return folder


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(next(folder.rglob("model.safetensors")))


def _largest_difference(a: Path, b: Path) -> float:
    left, right = _weights(a), _weights(b)
    assert left.keys() == right.keys()
    return max(float((left[key] - right[key]).abs().max()) for key in left)


def _train_command(beir_dir: Path, model: Path, out: Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "augir.cli", "train", "--dataset", str(beir_dir), "--model", str(model),
            "--epochs", "1", "--batch-size", str(BATCH), "--learning-rate", "0.001", "--warmup-ratio", "0",
            "--max-seq-length", "32", "--seed", "0", "--processes", str(processes), "--out", str(out)]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny BERT encoder without dropout: dropout masks are random per process, so with them two processes
    train a model equal to one process's only in distribution, and the comparison would test nothing."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from augir.retrieval.encoders import minilm_path

    torch.manual_seed(0)
    transformer = Transformer(str(minilm_path()), max_seq_length=32)
    transformer.model = BertModel(BertConfig(
        vocab_size=transformer.model.config.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    folder = tmp_path_factory.mktemp("encoder") / "no-dropout"
    SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def single_process_model(beir_dir, encoder_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "model"
    result = subprocess.run(_train_command(beir_dir, encoder_dir, out, 1), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_two_processes_train_the_model_one_process_trains(beir_dir, encoder_dir, single_process_model, tmp_path):
    out = tmp_path / "ddp"
    result = subprocess.run(_train_command(beir_dir, encoder_dir, out, 2), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{out}: trained on {PAIRS} pairs in 2 steps (2 processes)" in result.stdout
    assert result.stdout.count("trained on") == 1  # only the first process reports and writes
    moved = _largest_difference(encoder_dir, single_process_model)
    assert moved > 1e-3  # training changed the weights, so equality below is not trivial
    assert _largest_difference(out, single_process_model) < 1e-5 * max(1.0, moved) + 1e-6


UNGATHERED = textwrap.dedent("""
    import sys
    from pathlib import Path

    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import augir.training.train as train
    from augir.data.beir import load_beir
    from augir.params import TrainParams
    from augir.training.pairs import real_pairs

    beir, model, out = sys.argv[1:4]
    train.make_loss = lambda encoder, params: MultipleNegativesRankingLoss(encoder, gather_across_devices=False)
    params = TrainParams(datasets=[beir], model=model, epochs=1, batch_size=8, learning_rate=0.001,
                         warmup_ratio=0, max_seq_length=32, seed=0)
    train.train_encoder(real_pairs(load_beir(Path(beir)), beir), params, Path(out))
""")


def test_without_gathering_the_negatives_two_processes_train_another_model(beir_dir, encoder_dir,
                                                                           single_process_model, tmp_path):
    """The control: each process sees only its own 4 passages as negatives, and the model moves away."""
    script = tmp_path / "ungathered.py"
    script.write_text(UNGATHERED)
    out = tmp_path / "ungathered"
    result = subprocess.run(torchrun_command(2, [str(script), str(beir_dir), str(encoder_dir), str(out)]),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _largest_difference(out, single_process_model) > 1e-4


def test_cached_loss_trains_the_model_the_plain_loss_trains(beir_dir, encoder_dir, single_process_model, tmp_path):
    """GradCache: the same gradients at the memory of a mini-batch (2 texts per forward pass here)."""
    from augir.data.beir import load_beir

    params = TrainParams(datasets=[str(beir_dir)], model=str(encoder_dir), epochs=1, batch_size=BATCH,
                         learning_rate=0.001, warmup_ratio=0, max_seq_length=32, seed=0, loss="cached_mnrl",
                         mini_batch_size=2)
    stats = train_encoder(real_pairs(load_beir(beir_dir), str(beir_dir)), params, tmp_path / "cached")
    assert stats["steps"] == 2 and stats["processes"] == 1
    assert _largest_difference(tmp_path / "cached", single_process_model) < 1e-5
    from augir.retrieval.encoders import load_encoder

    texts = ["tides of the moon", "iron rust"]
    assert np.allclose(load_encoder(str(tmp_path / "cached")).encode(texts),
                       load_encoder(str(single_process_model)).encode(texts), atol=1e-5)


def test_the_launcher_is_torchrun_on_this_machine_and_a_failed_process_is_one_line(tmp_path):
    from augir.errors import AugirError
    from augir.training.launch import run_distributed

    command = torchrun_command(4, ["stages/train.py"])
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "stages/train.py"]
    failing = tmp_path / "fails.py"
    failing.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(AugirError, match=r"^runtime.train_processes: 2: a training process failed") as caught:
        run_distributed(2, [str(failing)])
    assert "\n" not in str(caught.value)
