"""Repository-wide pytest set-up (tests and docstring examples)."""

import torch

# Small nets train faster on one thread on small machines, and fits are then
# bit-reproducible across runs.
torch.set_num_threads(1)
