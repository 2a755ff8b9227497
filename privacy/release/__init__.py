"""The differential-privacy release, run after aggregation: plan and budget, noise mechanisms,
reconciliation of resolutions, the budget ledger, the releaser and data retention.

``hexpulse release`` (:mod:`privacy.release.cli`) runs :class:`privacy.release.releaser.Releaser`.
"""
