"""spinv.data."""
