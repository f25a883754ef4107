"""WSGI entry point: ``gunicorn wsgi:app`` serves the product with settings from the environment (its menus
linted first: a file with errors stops the worker, ``app.menu_gate``)."""

from app.factory import create_app
from app.menu_gate import refuse_menus_with_errors
from app.settings import Settings

refuse_menus_with_errors(Settings.from_env().menus_path)
app = create_app()
