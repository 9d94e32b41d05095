"""spinv.nn."""
