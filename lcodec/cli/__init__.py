"""The lcodec command line (click). Thin: parse, call the library, print."""
