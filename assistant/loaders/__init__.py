"""Loaders, one module per format; each returns an `assistant.ingest.Document` (see LOADERS there)."""
