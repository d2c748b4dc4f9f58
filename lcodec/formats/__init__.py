"""The .lcf container (see FORMAT.md)."""
