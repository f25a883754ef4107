"""The menu linter: each kind of mistake in a menu file is reported with its file, line and a hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from menus import MenuError, lint, load_menus
from menus.__main__ import check

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "engine" / "flows" / "demo.yaml"
DEMO_STEPS = {"demo.greet": frozenset({"ok"}), "demo.items": frozenset({"ok"}), "demo.slow": frozenset({"ok"}),
              "demo.check_pin": frozenset({"ok", "wrong"}), "demo.broken": frozenset({"ok"})}


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "menus.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    from engine.preview import screen_problems

    try:
        loaded = load_menus(path)
    except MenuError as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in lint(loaded, steps=DEMO_STEPS, screen_check=screen_problems) if p.severity == "error"]


def test_the_product_menus_pass_lint():
    problems = [p for p in check(str(ROOT / "config" / "menus.yaml")) if p.severity == "error"]
    assert problems == []


def test_the_demo_flow_passes_lint():
    assert _problems(DEMO) == []


def test_a_router_home_before_the_main_menu_passes_lint(tmp_path):
    assert _problems(_broken(tmp_path, "    home: home\n", "    home: route\n    main_menu: home\n")) == []


# Where each mistake is reported, as the line of the broken file it names (found by its content, so
# a line added to demo.yaml moves nothing here): ``"      home:"`` is the one line that starts so
# (indentation included), ``("      bye:", 2)`` the second of two such lines, ``1`` the file's first line.
@pytest.mark.parametrize(("old", "new", "expected", "at"), [
    ("target: bye}", "target: byebye}", "target 'byebye' does not exist (hint: did you mean 'bye'?)", "      home:"),
    ("kind: end\n        text: {fr: \"Au revoir.\"", "kind: finish\n        text: {fr: \"Au revoir.\"",
     "unknown kind 'finish' (hint: known kinds: menu, input, action, router, message, end)", "      bye:"),
    ("step: demo.broken", "step: demo.brokn", "unknown dialog step 'demo.brokn' (hint: did you mean 'demo.broken'?)",
     "      broken:"),
    ("validator: {type: pin}", "validator: {type: fingerprint}", "validator.type",
     "        validator: {type: fingerprint}"),
    ("text: {fr: \"Réservé\", en: \"Reserved\"}", "text: {fr: \"Réservé\"}", "no 'en' translation", "      vip_only:"),
    # the prompt under a format error is a text like the others: translated, its placeholders sampled
    ("        next: check_pin\n", "        next: check_pin\n        reask: {fr: \"Code PIN:\"}\n",
     "reask: no 'en' translation", "      ask_pin:"),
    ("        next: check_pin\n", "        next: check_pin\n        reask: {fr: \"{essais} PIN:\", en: \"PIN:\"}\n",
     "placeholder '{essais}' has no sample value", "      ask_pin:"),
    # the name of the task on the redial offer: translated, sampled, and only where a session can wait
    ("        next: check_pin\n", "        next: check_pin\n        resume: {fr: \"Reprendre le PIN ?\"}\n",
     "resume: no 'en' translation", "      ask_pin:"),
    ("        next: check_pin\n", "        next: check_pin\n        resume: {fr: \"{tache} ?\", en: \"{tache}?\"}\n",
     "placeholder '{tache}' has no sample value", "      ask_pin:"),
    ("        next: check_pin\n", "        next: check_pin\n        resume: {fr: \"" + "tres long " * 20 + "\", en: x}\n",
     "resume offer is", "      ask_pin:"),
    ("kind: end\n        text: {fr: \"Au revoir.\"", "kind: end\n        resume: {fr: a, en: b}\n        text: {fr: \"Au revoir.\"",
     "resume: an end node is never resumed", "      bye:"),
    ("{when: \"vip\", target: vip_home}", "{when: \"vip >>> 3\", target: vip_home}", "condition 'vip >>> 3'",
     "      route:"),
    ("Bonjour {name}, être", "Bonjour {nom}, être", "placeholder '{nom}' has no sample value", "      home:"),
    ("{amount:money} le", "{amount:euros} le", "unknown format '{amount:euros}'", "      done:"),
    ("Choisi: {picked.label}", "Choisi: {picked.label} " + "tres long " * 20, "screen is", "      picked:"),
    # a dotted placeholder left open: reported, the screen measure does not crash on it
    ("Choisi: {picked.label}", "Choisi: {picked.label", "bad braces", "      picked:"),
    ("      bye:\n", "      orphan: {kind: end, text: {fr: x, en: x}}\n      bye:\n", "unreachable",
     "      orphan: {kind: end, text: {fr: x, en: x}}"),
    ("    home: home\n", "    home: bye\n", "the home node must be a menu", "      bye:"),
    # Home may be a router choosing each caller's main menu; the menu it names as main_menu is the root
    ("    home: home\n", "    home: route\n    main_menu: vip_home\n", "the main_menu node must be a menu",
     "      vip_home:"),
    ("    home: home\n", "    home: home\n    main_menu: home\n", "with 'main_menu:', the home node must be a router",
     "      home:"),
    ("    home: home\n", "    home: route\n    main_menu: nowhere\n", "main_menu node 'nowhere' does not exist",
     "  main:"),
    # (bye stays reachable without its option: the chat keyword FIN starts there)
    ("          - {label: {fr: \"Montant\", en: \"Amount\"}, target: ask_amount}\n", "", "unreachable",
     "      ask_amount:"),
    ("  busy: {fr: \"Occupé.\", en: \"Busy.\"}\n", "", "system_texts.busy: no 'fr' text", 1),
    # the line a hop on an ended USSD session gets: each language must have it
    ("  session_over: {fr: \"Session terminée.\", en: \"Session over.\"}\n",
     "  session_over: {fr: \"Session terminée.\"}\n", "system_texts.session_over: no 'en' text", 1),
    ("store: picked, target: picked}", "store: picked, target: picked, colour: red}",
     "unknown field 'colour'", "        items: {from: items,"),
    ("      picked:\n", "      bye:\n        kind: end\n        text: {fr: a, en: b}\n      picked:\n",
     "duplicate key 'bye'", ("      bye:", 2)),
])
def test_each_mistake_is_reported_with_its_line(tmp_path, old, new, expected, at):
    path = _broken(tmp_path, old, new)
    problems = _problems(path)
    matching = [p for p in problems if expected in p]
    assert matching, problems
    assert f"menus.yaml:{_line_of(path, at)}:" in matching[0]


def _line_of(path: Path, at: str | tuple[str, int] | int) -> int:
    """The number of the line ``at`` names in ``path`` (see above); a content that is not there, or is
    there more often than said, fails the test rather than pointing anywhere."""
    if isinstance(at, int):
        return at
    content, nth = (at, 1) if isinstance(at, str) else at
    numbers = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith(content)]
    assert len(numbers) == nth, (content, numbers)
    return numbers[nth - 1]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "menus.yaml"
    path.write_text("languages: [fr, en\nflows: {}\n", encoding="utf-8")
    problems = _problems(path)
    assert len(problems) == 1 and "YAML syntax" in problems[0] and "menus.yaml:2:" in problems[0]


def test_included_files_are_merged_and_checked(tmp_path):
    text = DEMO.read_text(encoding="utf-8").replace("flows:\n", "include: [extra.yaml]\nflows:\n", 1)
    text = text.replace("target: bye}", "target: extra_bye}", 1)
    (tmp_path / "menus.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "extra.yaml").write_text(
        "flow: main\nnodes:\n  extra_bye:\n    kind: end\n    text: {fr: \"A plus\"}\n", encoding="utf-8")
    problems = _problems(tmp_path / "menus.yaml")
    assert any("extra.yaml:3:" in p and "no 'en' translation" in p for p in problems), problems


def test_an_included_file_may_give_its_nodes_to_several_flows_each_of_which_must_exist(tmp_path):
    text = DEMO.read_text(encoding="utf-8").replace("flows:\n", "include: [extra.yaml]\nflows:\n", 1)
    (tmp_path / "menus.yaml").write_text(text, encoding="utf-8")
    extra = "flow: [main, {other}]\nnodes:\n  extra_bye:\n    kind: end\n    text: {{fr: \"A plus\", en: \"Bye\"}}\n"
    (tmp_path / "extra.yaml").write_text(extra.format(other="nowhere"), encoding="utf-8")
    problems = _problems(tmp_path / "menus.yaml")
    assert len(problems) == 1 and "extra.yaml:1:" in problems[0] and "flow 'nowhere' is not declared" in problems[0]
    second = text.replace("flows:\n", "flows:\n  other:\n    version: \"1\"\n    start: extra_bye\n"
                                       "    home: extra_bye\n    nodes: {}\n", 1)
    (tmp_path / "menus.yaml").write_text(second, encoding="utf-8")
    (tmp_path / "extra.yaml").write_text(extra.format(other="other"), encoding="utf-8")
    flows = load_menus(tmp_path / "menus.yaml").menus.flows
    assert "extra_bye" in flows["main"].nodes and "extra_bye" in flows["other"].nodes


def test_yaml_anchors_and_merge_keys_in_an_included_file_read_as_yaml_says(tmp_path):
    text = DEMO.read_text(encoding="utf-8").replace("flows:\n", "include: [extra.yaml]\nflows:\n", 1)
    text = text.replace("target: bye}", "target: extra_bye}", 1)
    (tmp_path / "menus.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "extra.yaml").write_text(
        "flow: main\nnodes:\n  extra_bye:\n    kind: end\n    text: &words {fr: \"A plus\"}\n"
        "  extra_bye2:\n    kind: end\n    text: {<<: *words, en: \"See you\"}\n", encoding="utf-8")
    node = load_menus(tmp_path / "menus.yaml").menus.flows["main"].nodes["extra_bye2"]
    assert node.text == {"fr": "A plus", "en": "See you"}  # type: ignore[union-attr]
    untranslated = [p for p in _problems(tmp_path / "menus.yaml") if "no 'en' translation" in p]
    assert len(untranslated) == 1 and "extra.yaml:3:" in untranslated[0], untranslated


def test_the_linter_measures_screens_against_what_each_adapter_shows():
    from channels.capabilities import ALL
    from channels.sms import SmsAdapter
    from channels.ussd import UssdAdapter
    from channels.whatsapp import CAPABILITIES as WHATSAPP  # what the Meta and Twilio adapters answer
    from web_fallback.customer.adapter import CAPABILITIES as WEB

    shown = [UssdAdapter().capabilities, SmsAdapter().capabilities, WHATSAPP, WEB]
    assert list(ALL) == shown
    assert [c.name for c in ALL] == ["ussd", "sms", "whatsapp", "web"]


def test_cli_exits_1_and_prints_the_problems(tmp_path):
    path = _broken(tmp_path, "target: bye}", "target: nowhere}")
    result = subprocess.run([sys.executable, "-m", "menus", "lint", str(path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 1
    assert "target 'nowhere' does not exist" in result.stdout
    ok = subprocess.run([sys.executable, "-m", "menus", "lint", "config/menus.yaml"], capture_output=True,
                        text=True, cwd=ROOT, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.yaml")))
def test_each_broken_fixture_gets_exactly_its_expected_problems(name):
    from engine.preview import screen_problems

    path = FIXTURES / f"{name}.yaml"
    found = [str(p).replace(str(FIXTURES) + "/", "") for p in lint(load_menus(path), screen_check=screen_problems)]
    expected = (FIXTURES / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    assert found == expected


def test_commit_outcomes_must_exist_and_a_commit_that_closes_the_journey_passes(tmp_path):
    fixture = (FIXTURES / "commit_back_to_confirm.yaml").read_text(encoding="utf-8")
    mended = tmp_path / "menus.yaml"
    mended.write_text(fixture.replace("target: confirm}\n      bye:", "target: home}\n      bye:"), encoding="utf-8")
    assert [str(p) for p in lint(load_menus(mended))] == []
    typo = tmp_path / "typo.yaml"
    typo.write_text(fixture.replace("commit: true", "commit: [okay]"), encoding="utf-8")
    assert [p.message for p in lint(load_menus(typo))] == ["node 'file': commit: outcome 'okay' is not one of its outcomes"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('{label: {fr: "Montant", en: "Amount"}, target: ask_amount}',
     '{key: "1", label: {fr: "Montant", en: "Amount"}, target: ask_amount}', "options 1 and 2 share the key '1'"),
    ('{label: {fr: "Montant", en: "Amount"}, target: ask_amount}',
     '{key: "98", label: {fr: "Montant", en: "Amount"}, target: ask_amount}', "key '98' is a navigation key"),
    ('{label: {fr: "Montant", en: "Amount"}, target: ask_amount}',
     '{key: "0", label: {fr: "Montant", en: "Amount"}, target: ask_amount}', "key"),
])
def test_option_keys_are_unique_and_never_a_navigation_key(tmp_path, old, new, expected):
    problems = _problems(_broken(tmp_path, old, new))
    assert any(expected in p for p in problems), problems


def test_the_product_keywords_are_unambiguous_and_every_screen_fits_each_adapter():
    """The product menus measured against the adapters' capabilities: an SMS budget that a screen
    would overflow, or a channel offering fewer choices than a menu has, is reported."""
    from dataclasses import replace

    from channels.sms import CAPABILITIES as SMS
    from channels.ussd import CAPABILITIES as USSD
    from dialogs.registry import known_steps
    from engine.preview import screen_problems

    loaded = load_menus(ROOT / "config" / "menus.yaml")
    assert [p for p in lint(loaded, steps=known_steps(), screen_check=screen_problems, channels=[USSD, SMS])
            if p.severity == "error"] == []
    tiny = replace(SMS, name="tiny", max_chars=60, max_options=3)
    found = [p.message for p in lint(loaded, screen_check=screen_problems, channels=[tiny])]
    assert any("node 'main_menu': tiny/fr: 9 options, the channel offers at most 3 at once" == m for m in found), found
    assert any(m.startswith("node 'kw_help_show': tiny/en: screen is") for m in found)


PRODUCT_STEP_FIXTURES = FIXTURES / "with_product_steps"


@pytest.mark.parametrize("name", sorted(p.stem for p in PRODUCT_STEP_FIXTURES.glob("*.yaml")))
def test_each_fixture_linted_with_the_product_steps_gets_exactly_its_expected_problems(name):
    """As ``python -m menus lint`` reports them: against the product's dialog steps and every adapter."""
    path = PRODUCT_STEP_FIXTURES / f"{name}.yaml"
    found = [str(p).replace(str(PRODUCT_STEP_FIXTURES) + "/", "") for p in check(str(path))]
    expected = (PRODUCT_STEP_FIXTURES / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    assert found == expected


def test_a_flow_open_to_guests_may_call_only_steps_that_need_no_customer(tmp_path):
    fixture = (PRODUCT_STEP_FIXTURES / "guest_flow_pays.yaml").read_text(encoding="utf-8")
    # The same journey in a flow for customers only: nothing to say.
    for_customers = tmp_path / "customers.yaml"
    for_customers.write_text(fixture.replace("guests: true", "guests: false"), encoding="utf-8")
    assert [str(p) for p in check(str(for_customers))] == []
    # The command a flow designer runs: the offending node with its file and line, exit status 1.
    result = subprocess.run([sys.executable, "-m", "menus", "lint", str(PRODUCT_STEP_FIXTURES / "guest_flow_pays.yaml")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{PRODUCT_STEP_FIXTURES / 'guest_flow_pays.yaml'}:41: error: node 'pay': step "
                                    "'payments.full' needs a customer, and flow 'guest' is open to guests"), result.stdout
    # The product's guest flow calls only the simulator's steps, which say they need no customer.
    from dialogs.registry import guest_steps

    assert guest_steps() == {"simulator.start", "simulator.from_kwh", "simulator.add_appliance",
                             "simulator.next_slot", "simulator.from_appliances"}


def test_a_choice_of_an_input_screen_must_have_a_key_its_field_never_takes(tmp_path):
    from engine.preview import screen_problems
    from engine.validators import accepts

    def problems(validator: str) -> list[str]:
        path = _broken(tmp_path, "        validator: {type: amount, min: 100, max: 5000}\n        store: amount\n",
                       f"        validator: {validator}\n        store: amount\n        options:\n"
                       '          - {key: "50", label: {fr: "Tout payer", en: "Pay it all"}, target: bye}\n')
        return [p.message for p in lint(load_menus(path), steps=DEMO_STEPS, screen_check=screen_problems,
                                        accepts=accepts) if p.severity == "error"]

    assert problems("{type: amount, min: 100, max: 5000}") == []        # 50 is never an amount here: a choice
    assert problems("{type: amount, min: 1, max: 5000}") == [
        "node 'ask_amount': option 1: key '50' is also a value the field takes"]


_LIST_ITEMS = "        items: {from: items, label:"


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('{label: {fr: "Fin", en: "End"}, target: bye}', '{label: {fr: "Fin", en: "End"}, target: bye, after_items: true}',
     "node 'home': option 4: after_items on a screen without items"),
    (_LIST_ITEMS, '        options: [{label: {fr: Annuler, en: Cancel}, target: home, after_items: true},\n'
                  '                  {label: {fr: Autre, en: Other}, target: bye}]\n' + _LIST_ITEMS,
     "node 'list': option 1: after_items must come after the other options"),
    (_LIST_ITEMS, '        options: [{key: "9", label: {fr: Annuler, en: Cancel}, target: home, after_items: true}]\n'
                  + _LIST_ITEMS, "an option numbered after the items (after_items) takes no key"),
])
def test_an_option_under_the_items_needs_items_and_comes_last(tmp_path, old, new, expected):
    problems = _problems(_broken(tmp_path, old, new))
    assert any(expected in p for p in problems), problems


def test_a_cancel_under_the_items_passes_lint(tmp_path):
    cancel = '        options: [{label: {fr: Annuler, en: Cancel}, target: home, after_items: true}]\n'
    assert _problems(_broken(tmp_path, _LIST_ITEMS, cancel + _LIST_ITEMS)) == []


def test_a_token_shown_under_a_name_the_secret_rule_does_not_read_is_reported_where_it_is_written(tmp_path):
    """A screen shows a secret when a placeholder's field is named ``*_token``/``*_code`` (``menus/secrets.py``, as
    the WhatsApp replies read it): ``{picked.meter_token}`` shows one under the name ``picked``, so its reply would be
    kept a day and sent again by SMS, a stale token; ``{picked_token}`` is read as one."""
    shown = 'text: {fr: "Choisi: {picked.label}", en: "Picked: {picked.label}"}'
    hidden = _broken(tmp_path, shown, 'text: {fr: "Code: {picked.meter_token}", en: "Token: {picked.meter_token}"}')
    found = _problems(hidden)
    assert [p for p in found if "secret rule" in p] == [
        f"{hidden}:72: error: node 'picked': text ({lang}): '{{picked.meter_token}}' shows a token under the name "
        "'picked', which the secret rule does not read as one (hint: show it from a field named *_token or *_code "
        "({picked_meter_token}, set by a step): a screen showing a secret is kept on WhatsApp only the hour of a code "
        "and never sent again by SMS after it, one read as plain is kept a day and sent again (menus/secrets.py))"
        for lang in ("fr", "en")]
    named = _broken(tmp_path, shown, 'text: {fr: "Code: {picked_token}", en: "Token: {picked_token}"}')
    assert not [p for p in _problems(named) if "secret rule" in p]


def test_the_products_prepaid_purchase_detail_is_read_as_showing_a_secret():
    """Its token comes from ``pay_item_token``: a WhatsApp reply of it is kept the hour of a code, never re-sent."""
    from channels.reply_secrets import shows_secret
    from engine import Screen

    menus = load_menus(ROOT / "config" / "menus.yaml").menus
    assert shows_secret(menus, Screen(node="pay_detail_token", language="fr", blocks=()))
    assert not shows_secret(menus, Screen(node="pay_detail_paid", language="fr", blocks=()))
