"""WSGI entry point: ``gunicorn wsgi:app`` serves the product with settings from the environment (its menus
linted first: a file with errors stops the worker with status 3, which stops gunicorn and granian rather than have
them start it again, ``app.menu_gate``; shared sessions without ``SECRET_KEY`` stop it too, ``app.secret_gate``)."""

import gc

from app.factory import create_app
from app.menu_gate import refuse_menus_with_errors
from app.secret_gate import refuse_shared_sessions_without_secret_key
from app.settings import Settings

settings = Settings.from_env_or_refuse()
refuse_shared_sessions_without_secret_key(settings)
refuse_menus_with_errors(settings.menus_path)
app = create_app()

# What start-up built (modules, the compiled flows, the app: ~170 000 objects) lives as long as the worker. Frozen,
# the collector no longer walks it: an occasional full collection during a hop stalled every thread of the worker
# for 66-71 ms (28 Nov, in process, quiet), and now walks only what hops have kept since.
gc.collect()
gc.freeze()
