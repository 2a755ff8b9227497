"""The public face of hexpulse: a FastAPI service and a wall-screen dashboard over the release
tables only (``release_windows``, ``release_cells``, ``release_ledger``). See docs/API.md."""
