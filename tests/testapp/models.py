"""Source models the test extractors read from."""
