"""The CDS Hooks HTTP service around the engine (FastAPI)."""

from .app import create_app

__all__ = ["create_app"]
