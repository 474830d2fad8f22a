"""The filter stage: keep the synthetic queries that a retriever (consistency) or an LLM judge accepts."""
