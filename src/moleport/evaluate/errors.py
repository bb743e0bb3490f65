"""The one error type of the evaluate stage."""
from __future__ import annotations


class EvaluationError(ValueError):
    """Evaluation input (model, data, spec or options) cannot be used; the message says why."""
