"""The download stage: datasets in BEIR layout (read, validated, written), their sources, and Semanlink."""
