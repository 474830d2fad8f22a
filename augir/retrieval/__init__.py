"""The encode, evaluate and bm25 stages: dual encoders, dense indexes, BM25, and metrics with trec_eval semantics."""
