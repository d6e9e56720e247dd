"""Thin wrappers over Linux calls. Unit tests replace these, and only these, with fakes."""
