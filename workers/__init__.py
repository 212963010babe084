"""Background processing: Dramatiq broker/actor wiring and the per-document job."""
