"""Codec models, the registry and shipped weights."""
