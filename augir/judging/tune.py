"""LoRA fine-tuning of a causal LM as a judge (peft + the transformers Trainer): the loss is on the grade token only.

Each training sequence is the judge prompt followed by the human grade's token; every label but that token's is
-100, so the model learns p(grade | prompt), which is what `readout` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augir.judging.examples import GradedExample
from augir.judging.prompt import grade_token_ids, prompt_ids

IGNORED = -100  # the label the loss skips


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass(frozen=True)
class TuneSettings:
    lora: LoraSettings = LoraSettings()
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 8
    max_length: int = 256
    max_grade: int = 1
    seed: int = 0


def training_features(tokenizer: Any, examples: list[GradedExample], max_grade: int, max_length: int) -> list[dict]:
    """input_ids and labels per example: the prompt, then the grade token, the only labelled position."""
    grade_ids = grade_token_ids(tokenizer, max_grade)
    features = []
    for example in examples:
        prompt = prompt_ids(tokenizer, example.query, example.document, max_grade, max_length)
        features.append({
            "input_ids": prompt + [grade_ids[example.grade]],
            "labels": [IGNORED] * len(prompt) + [grade_ids[example.grade]],
        })
    return features


@dataclass
class GradeCollator:
    """Right-pads a batch; padding is masked out of attention and loss."""

    pad_id: int

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        def padded(key: str, value: int) -> Any:
            return torch.tensor([f[key] + [value] * (width - len(f[key])) for f in features])
        mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features])
        return {"input_ids": padded("input_ids", self.pad_id), "labels": padded("labels", IGNORED), "attention_mask": mask}


def with_lora(model: Any, lora: LoraSettings) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules))
    return get_peft_model(model, config)


def tune_judge(model: Any, tokenizer: Any, examples: list[GradedExample], settings: TuneSettings,
               work_dir: Path, max_steps: int = -1) -> tuple[Any, dict]:
    """Wrap ``model`` with LoRA adapters and train them on ``examples``; returns the peft model and training logs."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    peft_model = with_lora(model, settings.lora)
    features = Dataset.from_list(training_features(tokenizer, examples, settings.max_grade, settings.max_length))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    arguments = TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=settings.epochs, max_steps=max_steps,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate, seed=settings.seed,
        data_seed=settings.seed, save_strategy="no", report_to=[], logging_steps=10, use_cpu=not _has_cuda(),
        remove_unused_columns=False, disable_tqdm=True,
    )
    trainer = Trainer(model=peft_model, args=arguments, train_dataset=features, data_collator=GradeCollator(pad_id))
    result = trainer.train()
    peft_model.eval()
    return peft_model, {"train_loss": float(result.training_loss), "steps": int(result.global_step)}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def save_judge(peft_model: Any, tokenizer: Any, folder: Path, merged: bool) -> None:
    """The adapter in ``folder/adapter``; with ``merged``, base plus adapter as one model in ``folder/merged``."""
    peft_model.save_pretrained(str(folder / "adapter"))
    tokenizer.save_pretrained(str(folder / "adapter"))
    if merged:
        model = peft_model.merge_and_unload()
        # A GGUF-loaded model refuses save_pretrained until its quantizer is cleared (see offline-models notes).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(folder / "merged"))
        tokenizer.save_pretrained(str(folder / "merged"))


def load_adapter(model: Any, adapter_folder: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_folder)).eval()
