"""In-memory fakes of the store adapters, one module per feature; each
keeps its adapter's contract (one suite runs against both)."""
