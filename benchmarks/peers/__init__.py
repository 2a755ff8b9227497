"""Peers for the speed claims: the same job as hexpulse, written with other tools (README.md here)."""
