"""Parity harness: prove each exported artifact reproduces the PyTorch model, runtime by runtime.

Never imports :mod:`moleport.export`: the harness judges artifacts only through their runtimes.
"""
from moleport.parity.gates import Gates, GatesError, judge

__all__ = ["ExternalResult", "Gates", "GatesError", "add_external_rows", "judge", "run_parity"]


def __getattr__(name):  # lazy: importing the package must not load every runtime
    if name in ("run_parity", "add_external_rows", "ExternalResult", "ParityError"):
        from moleport.parity import harness

        return getattr(harness, name)
    raise AttributeError(name)
