"""A module that fails on import, as a user's extractor module with a bug would (E001)."""

raise RuntimeError("this module is broken on purpose")
