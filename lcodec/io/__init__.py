"""Reading and writing the media files lcodec compresses (images; audio has its own module)."""
