"""The train stage: the (query, passage) pairs a retriever learns from, and the fine-tuning itself."""
