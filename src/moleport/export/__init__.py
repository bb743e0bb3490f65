"""Export a trained checkpoint to ONNX, TFLite, Core ML and ExecuTorch (see :mod:`moleport.export.bundle`).

Submodules import their converter lazily; importing this package is cheap.
"""
