"""WSGI entry point: ``gunicorn wsgi:app`` serves the product with settings from the environment."""

from app.factory import create_app

app = create_app()
