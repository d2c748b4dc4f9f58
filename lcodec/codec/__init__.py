"""Entropy coding on constriction: frozen tables, escapes, context models, tiling."""
