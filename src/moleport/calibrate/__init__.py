"""Site calibration (issue #16): choose a bundle's operating point on a site's own labelled images.

``moleport calibrate BUNDLE --data SITE --target-sensitivity 0.95 --split-half 0 --out DIR`` runs the bundle's
shipped artifact (verified, in its own runtime) on the site's images, chooses the threshold that reaches the target
melanoma sensitivity on the calibration part, reports sensitivity / specificity with bootstrap CIs on it and on a
held-out check part (beside the bundle's original threshold), and writes a NEW bundle whose spec.json carries the
site's threshold, re-sealed and re-judged by the parity harness.

Public API: :func:`moleport.calibrate.site.calibrate_site` with :class:`moleport.calibrate.site.SiteConfig`;
:func:`moleport.calibrate.site.min_melanomas` (the refusal rule); :func:`moleport.calibrate.site.split_halves`.
"""
