"""The YAML reader under the menu loader: what it reads is what ``yaml.safe_load`` reads, every mapping
knows its lines, and a broken file is a problem with its file and line, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from menus import MenuError, load_menus
from menus.reader import LineDict, read_yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "engine" / "flows" / "demo.yaml"

SCALARS = """\
ints: [0, 7, -3, 0x1f, 0o17, 1_000, +12]
floats: [1.5, -0.25, 1e3, .inf, -.inf]
bools: [true, false, yes, no, on, off, True, NO]
nulls: [~, null, Null, ""]
dates: [2024-01-31, 2001-12-14t21:59:43.10-05:00]
strings: ["12", '007', "true", abc, "{brand} {x}", !!str 3, ! 4, "<<", a b c]
tagged: {a: !!int "5", b: !!float "2", c: !!bool "yes"}
keys: {2: two, ~: none, true: yes, 2024-01-31: day, "k": v, =: value}
block: |
  first {brand}
  second
folded: >
  one
  two
nested: [[1, [2, {a: [3]}]], {b: {c: {d: e}}}]
anchors: {x: &a {p: 1, q: [1, 2]}, y: *a, z: {<<: *a, r: 3}, s: &s plain, t: *s}
"""


@pytest.mark.parametrize("path", [ROOT / "config" / "menus.yaml", *sorted((ROOT / "config" / "menus").glob("*.yaml")),
                                  DEMO], ids=lambda p: p.name)
def test_the_product_files_read_as_yaml_safe_load_reads_them(path: Path) -> None:
    raw = path.read_bytes()
    assert read_yaml(raw, str(path)) == yaml.safe_load(raw)


def test_scalars_tags_keys_and_anchors_read_as_yaml_safe_load_reads_them() -> None:
    assert read_yaml(SCALARS.encode(), "x.yaml") == yaml.safe_load(SCALARS)


def test_each_mapping_knows_the_line_it_starts_on_and_the_line_of_each_key() -> None:
    data = read_yaml(b"a: 1\nb:\n  c: {d: 2,\n      e: 3}\n  f: [{g: 4}]\n", "x.yaml")
    assert isinstance(data, LineDict) and (data.file, data.line) == ("x.yaml", 1)
    assert data.key_lines == {"a": 1, "b": 2}
    inner = data["b"]
    assert (inner.line, inner.key_line, inner.key_lines) == (3, 2, {"c": 3, "f": 5})
    assert (inner["c"].line, inner["c"].key_lines) == (3, {"d": 3, "e": 4})
    assert inner["f"][0].line == 5


def test_an_empty_file_reads_as_nothing() -> None:
    assert read_yaml(b"", "x.yaml") is None
    assert read_yaml(b"# only a comment\n", "x.yaml") is None


def _with_extra(tmp_path: Path, extra: str) -> Path:
    text = DEMO.read_text(encoding="utf-8").replace("flows:\n", "include: [extra.yaml]\nflows:\n", 1)
    text = text.replace("target: bye}", "target: extra_bye}", 1)
    (tmp_path / "menus.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "extra.yaml").write_text("flow: main\nnodes:\n" + extra, encoding="utf-8")
    return tmp_path / "menus.yaml"


def test_an_alias_is_read_afresh_where_it_is_used_with_the_greeting_of_its_language(tmp_path: Path) -> None:
    path = _with_extra(tmp_path, "  extra_bye:\n    kind: end\n    text: {fr: &hello \"{greeting}!\", en: *hello}\n")
    node = load_menus(path).menus.flows["main"].nodes["extra_bye"]
    assert node.text == {"fr": "Bienvenue chez ElecNet!", "en": "Welcome to ElecNet!"}  # type: ignore[union-attr]


def test_a_mapping_s_own_keys_win_over_the_keys_it_merges_in(tmp_path: Path) -> None:
    path = _with_extra(tmp_path, "  extra_bye:\n    kind: end\n    text: &words {fr: \"A plus\", en: \"Later\"}\n"
                                 "  extra_bye2:\n    kind: end\n    text: {<<: *words, en: \"See you\"}\n")
    nodes = load_menus(path).menus.flows["main"].nodes
    assert nodes["extra_bye2"].text == {"fr": "A plus", "en": "See you"}  # type: ignore[union-attr]
    assert nodes["extra_bye"].text == {"fr": "A plus", "en": "Later"}  # type: ignore[union-attr]


@pytest.mark.parametrize(("extra", "message", "line"), [
    ("  extra_bye: &loop {kind: end, text: {fr: x, en: x}, samples: {me: *loop}}\n", "refers to itself", 3),
    ("  extra_bye: {kind: end, text: *nowhere}\n", "undefined alias 'nowhere'", 3),
    ("  extra_bye: {kind: end, text: {fr: x, en: x}}\n  other: 1\n  extra_bye: 2\n", "duplicate key 'extra_bye'", 5),
    ("  extra_bye: {kind: end, text: {fr: x, en: x}}\n  ? [a, b]\n  : 2\n", "a key that is a mapping or a list", 4),
    ("  extra_bye: {kind: end, text: {<<: 3}}\n", "a merge key (<<) takes a mapping", 3),
    ("  extra_bye: {kind: end, text: [fr, en}\n", "YAML syntax", 3),
])
def test_a_broken_included_file_is_one_problem_at_its_file_and_line(tmp_path: Path, extra: str, message: str,
                                                                   line: int) -> None:
    with pytest.raises(MenuError) as raised:
        load_menus(_with_extra(tmp_path, extra))
    problems = [str(p) for p in raised.value.problems]
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith(f"{tmp_path / 'extra.yaml'}:{line}: error: YAML syntax"), problems
