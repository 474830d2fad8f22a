"""Augmented sets made elsewhere (`augment.source`) and publishing ours as Hugging Face datasets."""
