"""Label infusion: synthetic queries give existing training queries new positives (SKIM)."""
