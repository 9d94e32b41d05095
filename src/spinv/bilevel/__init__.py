"""spinv.bilevel."""
