"""sohoa — digitization of Vietnamese one-stop-centre dossiers (shared core)."""

__version__ = "0.1.0"
