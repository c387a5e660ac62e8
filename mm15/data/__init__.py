"""Sample records, source adapters, synthetic generators, validation and dedup."""
