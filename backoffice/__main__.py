"""Command line: ``python -m backoffice serve [--host H] [--port P]`` and ``python -m backoffice seed``."""

from __future__ import annotations

import argparse
import logging
import sys

from werkzeug.serving import WSGIRequestHandler, run_simple

from engine.masking import MaskNumbersFilter

from .app import create_app
from .config import BackofficeConfig, database_url_from_env
from .context import EXTENSION_KEY, Backoffice
from .db import make_engine, make_session_factory
from .models import Base
from .mqtt_feed import MqttReadingFeed
from .seed import seed_demo

log = logging.getLogger("backoffice")


class _KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"


def _serve(args: argparse.Namespace) -> int:
    try:
        config = BackofficeConfig.from_env()
    except ValueError as refused:   # no API key or callback secret outside development: do not start
        log.error("not starting: %s", refused)
        return 2
    if config.dev:
        log.warning("BACKOFFICE_DEV=1: development mode%s", "" if config.api_key else ", the API needs no key")
    app = create_app(config)
    backoffice: Backoffice = app.extensions[EXTENSION_KEY]
    feed = None
    if config.mqtt_url:
        feed = MqttReadingFeed(config.mqtt_url, backoffice.sessions)
        feed.start()
        log.info("listening for meter readings on %s", config.mqtt_url)
    # The access log prints request paths, and ours hold phone and account numbers.
    logging.getLogger("werkzeug").addFilter(MaskNumbersFilter())
    try:
        # HTTP/1.1 keeps the engine's connections open (the default HTTP/1.0 reconnects per call).
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False,
                   request_handler=_KeepAliveHandler)
    finally:
        if feed is not None:
            feed.stop()
        backoffice.close()
    return 0


def _seed(_args: argparse.Namespace) -> int:
    engine = make_engine(database_url_from_env())
    Base.metadata.create_all(engine)
    added = seed_demo(make_session_factory(engine))
    engine.dispose()
    print("demo data seeded" if added else "demo data already present")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backoffice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API (and the MQTT subscriber when MQTT_URL is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.set_defaults(run=_serve)
    commands.add_parser("seed", help="create the tables and add the demo data").set_defaults(run=_seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
