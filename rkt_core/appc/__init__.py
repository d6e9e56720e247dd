"""appc."""
