"""A fine-tuned small LLM as relevance judge: graded examples, the prompt, the grade readout, LoRA tuning, agreement."""
