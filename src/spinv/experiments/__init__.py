"""spinv.experiments."""
