"""Clinical validity: bootstrap CIs, calibration, operating points, source-shortcut audits.

Public API:

- :func:`moleport.evaluate.evaluation.evaluate_model` — ``moleport evaluate`` (checkpoint or artifact on a source);
- :func:`moleport.evaluate.bootstrap.bootstrap_metrics` — lesion-grouped bootstrap CIs;
- :func:`moleport.evaluate.calibration.reliability` / ``fit_temperature`` — ECE and temperature scaling;
- :func:`moleport.evaluate.operating_point.choose_operating_point` — val-chosen threshold for a target sensitivity;
- :func:`moleport.evaluate.audit.source_shortcut_audit` — ``moleport audit source-shortcut``;
- :func:`moleport.evaluate.color_constancy.shades_of_gray` — the ``shades-of-gray-p6-v1`` pixel rule.
"""
