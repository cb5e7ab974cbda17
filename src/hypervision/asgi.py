"""ASGI entry point for uvicorn or any ASGI server: ``hypervision.asgi:app``."""

from hypervision.app import create_app

app = create_app()
