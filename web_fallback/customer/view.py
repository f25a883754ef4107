"""One engine reply as a web page's parts: the lines of text, the options as buttons, the navigation,
the paging, and the free field a question asks for (a PIN as a password field).

The engine pages a long screen for the web too (``98``/``99``), laid out with the web's
capabilities; the page shown is ``reply.text``. Its lines are sorted here: a line that is one of
the screen's options becomes that option's button, the navigation and paging lines become buttons,
anything else is text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine import Option, Reply
from menus.schema import BACK, HOME, NEXT_PAGE, PREVIOUS_PAGE, InputNode, MenuSet

__all__ = ["Field", "PageView", "page_text", "view_of"]

# Validator types whose answers are digits: a phone shows its number pad.
_NUMERIC = frozenset({"digits", "amount", "account_number", "pin", "number", "date"})


@dataclass(frozen=True, slots=True)
class Field:
    secret: bool          # a PIN or a code: a password field, never filled back in
    numeric: bool
    max_length: int


@dataclass(frozen=True, slots=True)
class PageView:
    language: str
    error: str | None
    lines: tuple[str, ...]
    options: tuple[Option, ...]
    nav: tuple[Option, ...]
    paging: tuple[Option, ...]
    field: Field | None
    end: bool
    page: int
    pages: int


def _field(menus: MenuSet, node_id: str) -> Field | None:
    """The free field of the screen's node, if it asks for a value (its validator says what kind)."""
    for flow in menus.flows.values():
        node = flow.nodes.get(node_id)
        if isinstance(node, InputNode):
            spec = node.validator
            length = spec.max_len or (160 if spec.type == "text" else 40)
            return Field(node.is_secret(), spec.type in _NUMERIC, length)
    return None


def view_of(reply: Reply, menus: MenuSet, more: str, previous: str) -> PageView:
    """The page's parts; ``more``/``previous`` are the paging words of the reply's language."""
    screen = reply.screen
    language = screen.language if screen else menus.default_language
    options = {f"{o.key}. {o.label}": o for o in (screen.options if screen else ())}
    nav_line = " ".join(f"{o.key}. {o.label}" for o in (screen.nav if screen else ()))
    back_line, more_line = f"{PREVIOUS_PAGE}. {previous}", f"{NEXT_PAGE}. {more}"
    paging_lines = {back_line, more_line, f"{back_line} {more_line}"}
    lines: list[str] = []
    shown: list[Option] = []
    for line in reply.text.split("\n"):
        if screen and screen.error and line == screen.error:
            continue
        if line in options:
            shown.append(options[line])
        elif (nav_line and line == nav_line) or line in paging_lines:
            continue
        else:
            lines.append(line)
    if reply.page > 0 and shown and not lines and screen is not None:
        # A later page of a list holds only options: it keeps the list's heading, as a page should.
        lines = [line for block in screen.blocks for line in block.split("\n") if line]
    paging = []
    if reply.page > 0:
        paging.append(Option(PREVIOUS_PAGE, previous))
    if reply.page < reply.pages - 1:
        paging.append(Option(NEXT_PAGE, more))
    nav = tuple(o for o in (screen.nav if screen else ()) if o.key in (BACK, HOME))
    end = reply.end
    return PageView(language, screen.error if screen else None, tuple(lines), tuple(shown), nav,
                    tuple(paging), None if end or screen is None else _field(menus, screen.node), end,
                    reply.page, reply.pages)


def page_text(page: PageView, t: Callable[..., str]) -> str:
    """The page as a visitor reads it, in text (the flow simulator's view of a web screen): its error line, its
    lines, each button in brackets (options one a line, paging and navigation on one), its field.
    ``t(key, **values)`` gives the page's own words (``web_fallback.customer.texts``) in its language."""
    out = [f"! {page.error}"] if page.error else []
    out += [line for line in page.lines if line]
    if page.pages > 1:
        out.append(t("page_of", page=str(page.page + 1), pages=str(page.pages)))
    if page.field:
        out.append(f"[{t('secret_label') if page.field.secret else t('answer_label')}: ____]")
    out += [f"[{o.key}. {o.label}]" for o in page.options]
    buttons = [f"[{o.label}]" for o in (*page.paging, *page.nav)]
    if page.end:
        buttons.append(f"[{t('menu_again')}]")
    if buttons:
        out.append(" ".join(buttons))
    return "\n".join(out)
