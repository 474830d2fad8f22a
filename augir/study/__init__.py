"""Studies over many experiments: grid files that queue DVC experiments, and the report that reads them back."""
