"""Where does one hop's time go? cProfile of the engine answering the bench's session in-process.

Starts the seeded back office on loopback (like ``bench/ussd_hops.py``), builds the engine with
``create_app`` on Redis db 14 and a migrated SQLite file, plays ``--sessions`` sessions one after the
other through Flask's test client (no gunicorn, no sockets on the engine side) and prints the top
functions, for the hops that call the back office and for those that do not, separately.

Usage: ``python bench/profile_hop.py [--sessions 200] [--top 25]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ussd_hops import HOST, PHONES, PY, REDIS_URL, SCRIPT, base_env, child, free_port, run_checked, wait_http


def play(client, profiles: dict[str, cProfile.Profile] | None, backend_kinds: set[str], n: int) -> dict[str, float]:
    """Play ``n`` sessions; time spent per group of hops (profiled when ``profiles`` is given)."""
    spent = {"back end": 0.0, "no back end": 0.0}
    for i in range(n):
        session_id, inputs = f"prof_{uuid.uuid4().hex[:8]}_{i}", []
        for kind, value in SCRIPT:
            if value is not None:
                inputs.append(value)
            group = "back end" if kind in backend_kinds else "no back end"
            form = {"sessionId": session_id, "serviceCode": "*123#", "phoneNumber": PHONES[i % len(PHONES)],
                    "text": "*".join(inputs)}
            started = time.perf_counter()
            if profiles:
                profiles[group].enable()
            body = client.post("/ussd/africastalking", data=form).get_data(as_text=True)
            if profiles:
                profiles[group].disable()
            spent[group] += time.perf_counter() - started
            assert body.startswith("CON "), (kind, body)
    return spent


def session_sizes(store: redis.Redis) -> str:
    """Bytes of one stored session's JSON, by top-level field, and its (de)serialisation time."""
    from engine.session import Session

    raw: bytes = store.get(next(store.scan_iter("ussd:s:*")))  # type: ignore[assignment]
    doc = json.loads(raw)
    fields = sorted(((len(json.dumps(v, separators=(",", ":"), ensure_ascii=False)), k) for k, v in doc.items()),
                    reverse=True)
    session = Session.from_json(raw)
    encode = timeit.timeit(session.to_json, number=500) / 500
    decode = timeit.timeit(lambda: Session.from_json(raw), number=500) / 500
    return (f"session JSON {len(raw)} bytes; largest fields: " + ", ".join(f"{k} {n}" for n, k in fields[:6])
            + f"; to_json {encode * 1e3:.3f} ms, from_json {decode * 1e3:.3f} ms")


def show(profile: cProfile.Profile, top: int, key: str) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(key).print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ussd-profile-"))
    store = redis.Redis.from_url(REDIS_URL)
    try:
        bo_port = free_port()
        env = base_env(tmp, bo_port, free_port())
        run_checked([PY, "-m", "backoffice", "seed"], env)
        with child([PY, "-m", "backoffice", "serve", "--host", HOST, "--port", str(bo_port)], env,
                   tmp / "backoffice.log") as bo:
            wait_http(bo_port, "/healthz", bo, tmp / "backoffice.log")
            from app.factory import create_app
            from app.settings import Settings
            from app.storage import migrate

            migrate(env["DATABASE_URL"])
            app = create_app(Settings(database_url=env["DATABASE_URL"], redis_url=REDIS_URL,
                                      backoffice_url=env["BACKOFFICE_URL"], log_level="WARNING",
                                      payment_callback_secret="bench-callback-secret"))
            client = app.test_client()
            backend_kinds = {k for k, _ in SCRIPT[:3]}  # dial, balance, bills: see ussd_hops' probe
            play(client, None, backend_kinds, 10)
            plain = play(client, None, backend_kinds, args.sessions)
            for group, seconds in plain.items():
                print(f"{group}: {seconds / (args.sessions * 3) * 1000:.2f} ms per hop in-process, no profiler")
            print(session_sizes(store))
            profiles = {g: cProfile.Profile() for g in ("back end", "no back end")}
            spent = play(client, profiles, backend_kinds, args.sessions)
            for group, profile in profiles.items():
                hops = args.sessions * (3 if group == "back end" else len(SCRIPT) - 3)
                print(f"===== {group} hops: {hops}, {spent[group] / hops * 1000:.2f} ms per hop (under cProfile)")
                print(show(profile, args.top, "cumulative"))
                print(show(profile, args.top, "tottime"))
    finally:
        store.flushdb()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
