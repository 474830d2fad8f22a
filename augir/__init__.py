"""augir: reproducible LLM-based data augmentation for dense retrieval."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads spin while waiting for work by default. On a CPU shared with other processes (a DVC
# grid, CI, several users) spinning threads take the cores the working ones need: measured here with SmolLM2 on a
# loaded 2-core machine, a 2-thread forward pass took 19-27 s with the default policy and 3.4-4.5 s with PASSIVE
# (alternating passes in one process per policy). Set before torch is imported (libgomp reads it once); an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
