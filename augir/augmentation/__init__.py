"""The augment stage: prompts, generators and their backends, clean-up of what they write."""
