"""Helpers shared by tests that need services of their own (never the shared ones)."""
