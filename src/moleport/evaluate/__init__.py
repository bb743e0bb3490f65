"""Clinical validity: bootstrap CIs, calibration, operating points, source-shortcut audits.

Public API:

- :func:`moleport.evaluate.evaluation.evaluate_model` — ``moleport evaluate`` (checkpoint or artifact on a source);
- :func:`moleport.evaluate.bootstrap.bootstrap_metrics` — lesion-grouped bootstrap CIs;
- :func:`moleport.calibration.reliability` / ``fit_temperature`` — ECE and temperature scaling;
- :func:`moleport.evaluate.operating_point.choose_operating_point` — val-chosen threshold for a target sensitivity;
- :func:`moleport.evaluate.audit.source_shortcut_audit` — ``moleport audit source-shortcut``;
- colour constancy (``shades-of-gray-p6``) is a ModelSpec option: :func:`moleport.preprocess.shades_of_gray`, in-graph in exports.
"""
