"""Source models and extractors the export runner and command tests read from."""
