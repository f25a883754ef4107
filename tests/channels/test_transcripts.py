"""Golden transcripts: conversations kept as data in ``tests/transcripts/*.yaml``, replayed over the USSD
callback on every session store. ``pytest --update-transcripts`` rewrites the expected screens on purpose
(review the diff before committing it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.factory import create_app
from engine import MemorySessionStore

from ..support.engine import UssdPhone

TRANSCRIPTS = sorted((Path(__file__).resolve().parents[1] / "transcripts").glob("*.yaml"))


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


@pytest.mark.parametrize("store", ["redis", "memory"])
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
def test_transcript(path: Path, store: str, settings, request: pytest.FixtureRequest) -> None:
    transcript = yaml.safe_load(path.read_text(encoding="utf-8"))
    app = create_app(settings, store=MemorySessionStore() if store == "memory" else None)
    phone = UssdPhone(app.test_client(), transcript["phone"])
    seen = []
    for step in transcript["steps"]:
        screen = phone.dial() if step["send"] is None else phone.answer(str(step["send"]))
        seen.append(screen)
        if not request.config.getoption("--update-transcripts"):
            assert screen == step["expect"], f"{path.name}: after sending {step['send']!r}"
    if request.config.getoption("--update-transcripts") and store == "redis":
        for step, screen in zip(transcript["steps"], seen, strict=True):
            step["expect"] = _Literal(screen)
        dumper = yaml.SafeDumper
        dumper.add_representer(_Literal, _literal)
        header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines()
                         if line.startswith("#"))
        path.write_text(header + yaml.dump(transcript, Dumper=dumper, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
