"""How long does queueing a zone broadcast to 10 000 subscribers take?

What runs: a freshly migrated product database (PostgreSQL in a schema of its own on
``TEST_DATABASE_URL``, dropped at the end; or SQLite with ``--sqlite``) holding ``--subscribers``
active ``outage_zone`` opt-ins for one zone (a third of them with a language preference, a few with
STOP), then ``NoticeRelay.apply`` of one ``power_restored`` notice for that zone, timed from the call
to the commit: the SELECT of the recipients (STOP excluded), their languages, the multi-row INSERT of
the outbox rows with their de-duplication keys, and the cursor update. The feed read itself (one
HTTP GET of a page of notices) is not in the figure. A second apply of the same notice is timed too:
it must queue nothing (each customer hears once).

Usage: ``python -m bench.notify_broadcast [--subscribers 10000] [--sqlite]``. Target: under 10 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from sqlalchemy import func, insert, select

from app.broadcast import NoticeRelay
from app.storage import make_sessions, migrate
from app.storage.models import NotificationStopRow, OutboxEventRow, PreferenceRow, SubscriptionRow
from backend_clients.notices import FeedNotice, NoticePage
from bench.scratch_postgres import scratch_schema


class _NoFeed:
    def after(self, cursor: int, limit: int = 200) -> NoticePage:
        return NoticePage([], cursor)


def run(url: str, subscribers: int) -> None:
    migrate(url)
    sessions = make_sessions(url)
    numbers = [f"+22177{n:07d}" for n in range(subscribers)]
    with sessions.begin() as db:
        conn = db.connection()
        conn.execute(insert(SubscriptionRow), [{"msisdn": m, "topic": "outage_zone", "scope": "DKR-PLATEAU",
                                                "channel": "sms", "active": True} for m in numbers])
        conn.execute(insert(PreferenceRow), [{"msisdn": m, "language": "en"} for m in numbers[::3]])
        conn.execute(insert(NotificationStopRow), [{"msisdn": m, "channel": "sms", "source": "bench"}
                                                   for m in numbers[::1000]])
    relay = NoticeRelay(sessions, _NoFeed())
    notice = FeedNotice(1, "power_restored", zone="DKR-PLATEAU", fields={"outage_ids": ["OUT-BENCH"]})
    started = time.perf_counter()
    relay.apply(notice)
    first = time.perf_counter() - started
    started = time.perf_counter()
    relay.apply(notice)
    second = time.perf_counter() - started
    with sessions() as db:
        queued = db.scalar(select(func.count()).select_from(OutboxEventRow)) or 0
    stopped = len(numbers[::1000])
    print(f"database: {url.split('://')[0]}")
    print(f"subscribers: {subscribers} (STOP: {stopped})  outbox rows queued: {queued}")
    print(f"queue the broadcast: {first:.2f} s  ({queued / first:,.0f} rows/s)   target < 10 s: "
          f"{'ok' if first < 10 else 'MISSED'}")
    print(f"same notice again (must add nothing): {second:.2f} s")
    assert queued == subscribers - stopped, "every subscriber but the stopped ones, once"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead of PostgreSQL")
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench.db", args.subscribers)
        return 0
    with scratch_schema() as url:
        run(url, args.subscribers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
