"""Command line: ``python -m backoffice serve [--host H] [--port P]``, ``python -m backoffice seed``,
``python -m backoffice outage declare ZONE [--eta ISO] [--cause TEXT]``, ``outage restore ZONE`` and
``python -m backoffice bill issue ACCOUNT AMOUNT --due YYYY-MM-DD [--kwh K] [--period YYYY-MM]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from werkzeug.serving import run_simple

from engine.masking import MaskNumbersFilter

from .app import create_app
from .config import BackofficeConfig, database_url_from_env
from .context import EXTENSION_KEY, Backoffice
from .db import make_engine, make_session_factory
from .models import Base
from .mqtt_feed import MqttReadingFeed
from .seed import seed_demo

log = logging.getLogger("backoffice")


class _QuietFeedPolls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("GET /api/v1/notices" in message and '" 200 ' in message)


def _serve(args: argparse.Namespace) -> int:
    try:
        config = BackofficeConfig.from_env()
    except ValueError as refused:   # no API key or callback secret outside development: do not start
        log.error("not starting: %s", refused)
        return 2
    if config.dev:
        log.warning("BACKOFFICE_DEV=1: development mode%s", "" if config.api_key else ", the API needs no key")
    if args.workers > 1:
        return _serve_workers(config, args)
    app = create_app(config)
    backoffice: Backoffice = app.extensions[EXTENSION_KEY]
    feed = None
    if config.mqtt_url:
        feed = MqttReadingFeed(config.mqtt_url, backoffice.sessions)
        feed.start()
        log.info("listening for meter readings on %s", config.mqtt_url)
    stop_smtp = None
    smtp_port = os.environ.get("BACKOFFICE_DEV_SMTP_PORT", "").strip()
    if config.dev and smtp_port:
        from .dev_smtp import start_dev_smtp

        stop_smtp = start_dev_smtp(app.extensions["dev_sink"], int(smtp_port))
    # The access log prints request paths, and ours hold phone and account numbers.
    logging.getLogger("werkzeug").addFilter(MaskNumbersFilter())
    # The product's worker reads the notice feed every few seconds: its answered polls are not news.
    logging.getLogger("werkzeug").addFilter(_QuietFeedPolls())
    try:
        # werkzeug's server answers every request "Connection: close" (since 2.1, whatever the protocol
        # version), so each call of the engine opens a connection: fine for development and tests; the
        # production set-up (``app serve`` with Redis) runs the back office under gunicorn, which keeps them.
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    finally:
        if feed is not None:
            feed.stop()
        if stop_smtp is not None:
            stop_smtp()
        backoffice.close()
    return 0


def _serve_workers(config: BackofficeConfig, args: argparse.Namespace) -> int:
    """Several processes under gunicorn (``backoffice/server.py``); the MQTT feed, if any, in this one."""
    from .server import serve_with_gunicorn

    feed, engine = None, None
    if config.mqtt_url:
        engine = make_engine(config.database_url)
        Base.metadata.create_all(engine)
        feed = MqttReadingFeed(config.mqtt_url, make_session_factory(engine))
        feed.start()
        log.info("listening for meter readings on %s", config.mqtt_url)
    try:
        return serve_with_gunicorn(config, args.host, args.port, args.workers)
    finally:
        if feed is not None:
            feed.stop()
        if engine is not None:
            engine.dispose()


def _seed(_args: argparse.Namespace) -> int:
    engine = make_engine(database_url_from_env())
    Base.metadata.create_all(engine)
    added = seed_demo(make_session_factory(engine))
    engine.dispose()
    print("demo data seeded" if added else "demo data already present")
    return 0


def _outage(args: argparse.Namespace) -> int:
    from .errors import ApiError
    from .wire import parse_datetime
    from .zone_outages import declare_outage, restore_zone

    # An operator's command on the back office's own database: no API key is involved.
    engine = make_engine(database_url_from_env())
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    try:
        if args.action == "declare":
            result = declare_outage(sessions, args.zone, cause=args.cause or "",
                                    eta=parse_datetime(args.eta) if args.eta else None)
            print(f"outage {result['outage_id']} declared in zone {result['zone']} (notice {result['notice_id']})")
        else:
            result = restore_zone(sessions, args.zone)
            print(f"power restored in zone {result['zone']}: {', '.join(result['outage_ids'])} "
                  f"(notice {result['notice_id']})")
    except (ApiError, ValueError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _bill(args: argparse.Namespace) -> int:
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from .bill_run import issue_bill
    from .errors import ApiError

    # An operator's command on the back office's own database: no API key is involved.
    engine = make_engine(database_url_from_env())
    Base.metadata.create_all(engine)
    try:
        issued = issue_bill(make_session_factory(engine), args.account, Decimal(args.amount), kwh=Decimal(args.kwh),
                            due=date.fromisoformat(args.due), period=args.period)
        print(f"bill {issued['bill_id']} issued (notice {issued['notice_id']})")
    except (ApiError, ValueError, InvalidOperation) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backoffice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API (and the MQTT subscriber when MQTT_URL is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--workers", type=int, default=1,
                       help="1: werkzeug's server, one process (development); more: gunicorn gthread workers")
    serve.set_defaults(run=_serve)
    commands.add_parser("seed", help="create the tables and add the demo data").set_defaults(run=_seed)
    outage = commands.add_parser("outage", help="declare an outage or a restoration for a zone (customers are told)")
    outage.add_argument("action", choices=("declare", "restore"))
    outage.add_argument("zone")
    outage.add_argument("--eta", help="expected restoration, ISO 8601 (declare)")
    outage.add_argument("--cause", help="what happened (declare)")
    outage.set_defaults(run=_outage)
    bill = commands.add_parser("bill", help="issue a bill by hand (customers with bill alerts are told)")
    bill.add_argument("action", choices=("issue",))
    bill.add_argument("account")
    bill.add_argument("amount")
    bill.add_argument("--kwh", default="0")
    bill.add_argument("--due", required=True, help="YYYY-MM-DD")
    bill.add_argument("--period", help="YYYY-MM (default: this month)")
    bill.set_defaults(run=_bill)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
