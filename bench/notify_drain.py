"""How long do 100 000 queued messages take to drain at a provider's rate with two workers?

What runs: a freshly migrated product database on PostgreSQL (a schema of its own on
``TEST_DATABASE_URL``, dropped at the end), ``--messages`` bulk ``bill_issued`` rows in the outbox,
then two worker *processes*, each a real ``Dispatcher`` (claims with ``FOR UPDATE SKIP LOCKED``,
renders the template, records the outcome) paced by the real ``RedisPace`` (one GCRA Lua script,
Redis database 14 of ``TEST_REDIS_URL``'s server) at ``--rate`` messages per second for the
provider. The provider is a fast in-process fake (it returns a message id at once): what is measured
is the outbox and the shared pace, not a network.

It is a scaled-down run: draining 100 000 messages at 10/s would take 2h47 by definition. The
figure for 100 000 is extrapolated from the measured drain rate (100 000 / measured messages per
second), which is honest because the drain is linear (constant batch size, no growing state) and
the run is long enough to be dominated by the steady state; the script also prints the busiest
one-second window (it must not exceed the rate, give or take one) and checks no message went twice.

Usage: ``python -m bench.notify_drain [--messages 1500] [--rate 50]``. With ``--rate 0`` the pace is
off, which shows the ceiling of two workers on this machine (the rate must stay well under it).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass

import redis
from sqlalchemy import func, insert, select

from app.notify import Dispatcher, NotificationTemplates
from app.pace import RedisPace
from app.storage import make_sessions, migrate
from app.storage.delivery import SqlDeliveryQueue
from app.storage.models import OutboxEventRow
from bench.scratch_postgres import scratch_schema

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14").rsplit("/", 1)[0] + "/14"
PAYLOAD = '{"account_number": "1000001", "amount": "12500", "due_date": "2026-12-15"}'


@dataclass
class _Accepted:
    message_id: str


class FastProvider:
    """Takes every message at once; notes when (to check the rate afterwards)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._n = 0

    def send(self, to: str, text: str) -> _Accepted:
        self.times.append(time.time())
        self._n += 1
        return _Accepted(f"{os.getpid()}-{self._n}")


def _worker(url: str, rate: float, batch: int, out: mp.Queue[list[float]]) -> None:
    provider = FastProvider()
    pace = RedisPace(redis.Redis.from_url(REDIS), {"africastalking": rate}, prefix=f"bench:{url[-8:]}:") \
        if rate else None
    dispatcher = Dispatcher(SqlDeliveryQueue(make_sessions(url)), NotificationTemplates.load("config/notifications.yaml"),
                            {"sms": provider}, pace=pace)
    idle = 0
    while idle < 3:                 # three empty passes in a row: the queue is drained
        result = dispatcher.run_once(limit=batch)
        idle = idle + 1 if result.sent == 0 and result.paced == 0 else 0
        if idle:
            time.sleep(0.05)
    out.put(provider.times)


def run(url: str, messages: int, rate: float, batch: int) -> None:
    migrate(url)
    sessions = make_sessions(url)
    with sessions.begin() as db:
        db.connection().execute(insert(OutboxEventRow), [
            {"dedupe_key": f"bill:{n}", "kind": "bill_issued", "msisdn": f"+22177{n:07d}", "language": "fr",
             "payload": PAYLOAD, "status": "pending", "attempts": 0, "channel": "sms"} for n in range(messages)])
    results: mp.Queue[list[float]] = mp.Queue()
    workers = [mp.Process(target=_worker, args=(url, rate, batch, results)) for _ in range(2)]
    started = time.time()
    for worker in workers:
        worker.start()
    times = sorted(t for _ in workers for t in results.get(timeout=3600))
    for worker in workers:
        worker.join()
    with sessions() as db:
        sent = db.scalar(select(func.count()).select_from(OutboxEventRow).where(OutboxEventRow.status == "sent"))
    # Steady state: first send to last send (process start-up, imports and the final idle passes apart).
    elapsed = times[-1] - times[0]
    measured = (len(times) - 1) / elapsed
    busiest = 0
    start = 0
    for end, moment in enumerate(times):          # sliding one-second window
        while moment - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    print(f"messages: {messages}  sent: {sent}  provider calls: {len(times)}  (two workers, batch {batch})")
    print(f"rate: {rate or 'unpaced'}/s  drained in {elapsed:.1f} s (first to last send; {times[0] - started:.1f} s "
          f"of start-up before)  measured {measured:,.1f} messages/s  busiest second: {busiest}")
    hours, rest = divmod(100_000 / measured, 3600)
    print(f"100 000 messages at this rate: {int(hours)}h{int(rest // 60):02d}m{int(rest % 60):02d}s (extrapolated)")
    assert sent == messages == len(times), "every message once"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=50.0, help="provider messages per second (0: unpaced)")
    parser.add_argument("--batch", type=int, default=0, help="rows claimed per pass (default: one second's worth)")
    args = parser.parse_args()
    batch = args.batch or max(1, min(200, int(args.rate) or 200))
    with scratch_schema() as url:
        run(url, args.messages, args.rate, batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
