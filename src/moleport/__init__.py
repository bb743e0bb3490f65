"""moleport: melanoma classifier training, mobile export and parity."""
# Known trap: importing TensorFlow before triton is loaded segfaults (exit 139).
# torch._dynamo (used by torch.export / executorch.exir) loads triton, and
# `import coremltools` imports TensorFlow when it is installed. Loading torch._dynamo
# here, first, makes every import order inside the package safe.
import torch._dynamo  # noqa: F401  (import for its side effect; must stay first)

__version__ = "0.1.0"
