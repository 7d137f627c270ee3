"""Use cases: one module per use case, one transaction each."""
