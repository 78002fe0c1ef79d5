"""The runtime stage: extract a verified asset, relocate and trim it, and keep it prepared in the cache."""
