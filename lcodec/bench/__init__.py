"""Rate-distortion and speed benchmarking: learned models vs classical anchors, one run."""
