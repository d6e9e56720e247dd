"""stage0."""
