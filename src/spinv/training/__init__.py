"""spinv.training."""
