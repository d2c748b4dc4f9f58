"""Training: one entry point (`lcodec train MODEL`) for every model family."""
