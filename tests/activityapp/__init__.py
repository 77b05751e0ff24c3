"""Source models and configured built-in extractors for the activity extractor tests."""
