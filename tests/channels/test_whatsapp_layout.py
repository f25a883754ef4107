"""How a screen becomes Graph API messages on Meta's WhatsApp: reply buttons, a list, or text, within
WhatsApp's limits (3 buttons of 20 characters; 10 rows of 24, descriptions of 72; 1 024 characters
of body in an interactive message). Every layout here is what a customer's phone would show."""

from __future__ import annotations

from channels.whatsapp_meta import graph_messages
from engine import Option, Reply, Screen


def reply(options: list[tuple[str, str]], nav: bool = True, body: str = "Choisissez:", **kw: object) -> Reply:
    screen = Screen("n", "fr", (body,), tuple(Option(k, v) for k, v in options),
                    (Option("0", "Retour"), Option("00", "Accueil")) if nav else (), **kw)  # type: ignore[arg-type]
    text = "\n".join([body, *(f"{k}. {v}" for k, v in options)])
    return Reply(text, screen.end, screen)


def test_three_short_options_are_reply_buttons_and_back_home_fill_the_room_left():
    [message] = graph_messages(reply([("1", "Oui"), ("2", "Non")]))
    interactive = message["interactive"]
    assert interactive["type"] == "button"
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in interactive["action"]["buttons"]] == [
        ("opt:1", "Oui"), ("opt:2", "Non"), ("opt:0", "Retour")]
    assert interactive["body"]["text"] == "Choisissez:\n00. Accueil"


def test_a_label_longer_than_a_button_title_makes_a_list_whose_rows_keep_it_in_the_description():
    label = "Payer un autre montant que le solde"
    [message] = graph_messages(reply([("1", "Tout payer"), ("2", label)], nav=False), list_label="Choisir")
    interactive = message["interactive"]
    assert interactive["type"] == "list" and interactive["action"]["button"] == "Choisir"
    rows = interactive["action"]["sections"][0]["rows"]
    assert rows[0] == {"id": "opt:1", "title": "Tout payer"}
    assert rows[1] == {"id": "opt:2", "title": "Payer un autre montant…", "description": label}
    assert all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)


def test_ten_options_are_a_list_with_back_and_home_typed_and_eleven_are_numbered_text():
    ten = [(str(n), f"Facture {n}") for n in range(1, 11)]
    [message] = graph_messages(reply(ten))
    rows = message["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"opt:{n}" for n in range(1, 11)]
    assert message["interactive"]["body"]["text"] == "Choisissez:\n0. Retour 00. Accueil"
    eleven = reply([(str(n), f"Facture {n}") for n in range(1, 12)])
    assert graph_messages(eleven) == [{"type": "text", "text": {"body": eleven.text, "preview_url": False}}]


def test_an_end_a_paged_screen_or_a_body_over_1024_characters_is_text():
    ended = reply([], nav=False, end=True)
    assert graph_messages(ended)[0]["type"] == "text"
    paged = reply([("1", "Oui")])
    assert graph_messages(Reply(paged.text, False, paged.screen, page=0, pages=2))[0]["type"] == "text"
    long = reply([("1", "Oui")], body="x" * 1100)
    assert graph_messages(long)[0]["type"] == "text"


def test_an_error_line_comes_first_in_the_body():
    [message] = graph_messages(reply([("1", "Oui")], error="Choix invalide."))
    assert message["interactive"]["body"]["text"].startswith("Choix invalide.\nChoisissez:")
