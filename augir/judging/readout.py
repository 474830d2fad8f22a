"""The grade from the probabilities of the grade tokens at one position (Zhuang et al. 2024, "Beyond Yes and No").

The softmax is taken over the grade tokens only; the expected grade is sum(grade * p(grade)), the argmax grade
is kept too. No text is generated or parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tqdm import tqdm


@dataclass(frozen=True)
class GradeReading:
    probabilities: list[float]  # p(grade) for grades 0..max_grade
    expected: float
    argmax: int


def read_grades(logits: Any, grade_ids: list[int]) -> list[GradeReading]:
    """Readings from next-token logits (a [batch, vocab] tensor) at the grade position."""
    import torch

    probabilities = torch.softmax(logits[:, grade_ids].double(), dim=-1)
    grades = torch.arange(len(grade_ids), dtype=torch.float64)
    expected = probabilities @ grades
    return [
        GradeReading(probabilities=row.tolist(), expected=float(value), argmax=int(row.argmax()))
        for row, value in zip(probabilities, expected)
    ]


def left_padded(batch: list[list[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """Input ids, attention mask and position ids of left-padded sequences (positions count real tokens only)."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return input_ids, mask, positions


def judge_prompts(model: Any, tokenizer: Any, prompts: list[list[int]], grade_ids: list[int], batch_size: int,
                  progress: bool = False) -> list[GradeReading]:
    """Readings for tokenized judge prompts, in batches (left padding so the grade position is the last)."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    readings: list[GradeReading] = []
    model.eval()
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc="judge", unit="batch", disable=not progress):
        input_ids, mask, positions = left_padded(prompts[start : start + batch_size], pad_id)
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                           position_ids=positions.to(model.device)).logits[:, -1, :]
        readings.extend(read_grades(logits.float().cpu(), grade_ids))
    return readings
