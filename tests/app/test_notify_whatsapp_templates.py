"""``whatsapp_template`` in the notification templates: read at start-up, refused with the file and the kind
when it could not be a template Meta approved, and shipped for the alerts a customer may get days after
their last message (outage declared, power back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.notify import NotificationTemplates

TEXT = '    text: {fr: "Coupure {zone}", en: "Power cut {zone}"}\n'


def templates_with(tmp_path: Path, template: str) -> NotificationTemplates:
    path = tmp_path / "notifications.yaml"
    path.write_text(f"kinds:\n  outage_declared:\n{TEXT}    whatsapp_template: {template}\n", encoding="utf-8")
    return NotificationTemplates.load(path)


@pytest.mark.parametrize("template", [
    "outage_declared",                                  # a name alone, not {name, params}
    "{name: Outage Declared, params: []}",              # Meta's names are lower case, digits and _
    "{params: ['{zone}']}",                             # no name
    "{name: outage_declared, params: '{zone}'}",       # params not a list
])
def test_a_template_that_could_not_be_meta_s_is_refused_at_start_up_with_its_kind(tmp_path, template):
    with pytest.raises(ValueError, match=r"notifications.yaml: kind 'outage_declared': whatsapp_template needs"):
        templates_with(tmp_path, template)


def test_the_shipped_alerts_have_templates_with_their_parameters():
    shipped = NotificationTemplates.load("config/notifications.yaml")
    assert shipped.kinds["outage_declared"].whatsapp_template == ("outage_declared", ("{zone}",))
    assert shipped.kinds["power_restored"].whatsapp_template == ("power_restored", ("{zone}",))
    assert shipped.kinds["bill_issued"].whatsapp_template is None
