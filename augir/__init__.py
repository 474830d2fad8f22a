"""augir: reproducible LLM-based data augmentation for dense retrieval."""

__version__ = "0.1.0"
