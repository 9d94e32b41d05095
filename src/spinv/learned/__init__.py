"""spinv.learned."""
