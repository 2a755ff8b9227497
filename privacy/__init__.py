"""Privacy: ``keys/`` (pseudonym keys, serving ingest) and ``release/`` (noise once per window)."""
