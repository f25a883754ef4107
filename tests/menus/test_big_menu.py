"""The linter on a 10 000-node menu file (``bench/big_menu.py``): it walks all of it and still finds the one
mistake, with the included file and line where it is written. Its speed is measured by the bench, not here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.big_menu import generate
from menus.__main__ import check


@pytest.fixture(scope="module")
def big_menu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("big-menu"), 10_000)


def test_a_valid_10000_node_menu_lints_clean(big_menu: Path) -> None:
    assert check(str(big_menu)) == []


def test_one_broken_target_deep_in_an_included_file_is_reported_where_it_is_written(big_menu: Path) -> None:
    branch = big_menu.parent / "menus" / "branch_7.yaml"
    text = branch.read_text(encoding="utf-8")
    lines = text.splitlines()
    line = max(i for i, t in enumerate(lines) if "target: j1100_do" in t)
    lines[line] = lines[line].replace("j1100_do", "j1100_doo")
    branch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        problems = [str(p) for p in check(str(big_menu)) if p.severity == "error"]
    finally:
        branch.write_text(text, encoding="utf-8")
    assert len(problems) == 4, problems
    target = problems[0]
    node_line = lines.index("  j1100_confirm:") + 1  # problems point at the node
    assert target.startswith(f"{branch}:{node_line}: error: node 'j1100_confirm': option 1: "
                             "target 'j1100_doo' does not exist")
    assert "did you mean 'j1100_do'?" in target
    # the committing action nobody leads to any more, and the screens only it led to
    assert sorted(p.split("node '")[1].split("'")[0] for p in problems[1:]) == ["j1100_do", "j1100_done",
                                                                                 "j1100_dup"]
    assert all("unreachable" in p for p in problems[1:])


def test_a_text_too_long_deep_in_an_included_file_is_reported_for_each_channel_it_overflows(big_menu: Path) -> None:
    branch = big_menu.parent / "menus" / "branch_5.yaml"
    text = branch.read_text(encoding="utf-8")
    node_line = text.splitlines().index("  j800_done:") + 1
    # About 500 characters: over USSD's 178, SMS's three parts (459) and the web page's 400, within WhatsApp's 4 096.
    branch.write_text(text.replace("Demande 00800 enregistrée", "Demande 00800 " + "tres long texte " * 30
                                   + "enregistrée", 1), encoding="utf-8")
    try:
        problems = [str(p) for p in check(str(big_menu))]
    finally:
        branch.write_text(text, encoding="utf-8")
    prefix = f"{branch}:{node_line}: error: node 'j800_done': "
    assert all(p.startswith(prefix) and "characters with its options and navigation" in p for p in problems), problems
    assert sorted(p[len(prefix):].split(":")[0] for p in problems) == ["sms/fr", "ussd/fr", "web/fr"]
