"""Pseudonym keys, serving ingest: the master key, the daily key ring, pseudonyms, DLQ sealing.

``hexpulse keyring …`` (:mod:`privacy.keys.cli`) manages them; docs/KEYS.md is the operator's view.
"""
