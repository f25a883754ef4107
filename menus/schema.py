"""The menu language: pydantic models of ``config/menus.yaml``, one class per node kind.

Every model is frozen and forbids unknown fields, so a typo in YAML is a load error with
its location rather than a silently ignored key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .brand import Brand

__all__ = [
    "BACK",
    "FORMAT_SPECS",
    "HOME",
    "NAVIGATION_KEYS",
    "NEXT_PAGE",
    "NODE_KINDS",
    "PREVIOUS_PAGE",
    "SYSTEM_TEXT_KEYS",
    "ActionNode",
    "ArgumentSpec",
    "ChannelEntries",
    "ChannelSpec",
    "EndNode",
    "FlowSpec",
    "IncludedNodes",
    "InputNode",
    "IntentEntry",
    "ItemsSpec",
    "KeywordEntry",
    "MenuNode",
    "MenuSet",
    "MessageNode",
    "Node",
    "OptionSpec",
    "Resolver",
    "RouteSpec",
    "RouterNode",
    "Texts",
    "ValidatorSpec",
]

Texts = dict[str, str]
"""Text per language code: ``{fr: "Solde", en: "Balance"}``."""

# Texts the engine itself shows, declared in YAML so they are translated and linted like the rest.
SYSTEM_TEXT_KEYS = (
    "back", "home", "more", "previous", "invalid_choice", "invalid_input",
    "too_many_errors", "error", "backend_down", "busy", "resume", "yes", "no", "menu_changed", "session_over",
)

# Keys the engine reads as navigation on every screen (the one definition): Back, Home (main
# menu), next page, previous page. An option may not take one of them.
BACK: Final = "0"
HOME: Final = "00"
NEXT_PAGE: Final = "98"
PREVIOUS_PAGE: Final = "99"
NAVIGATION_KEYS: Final = frozenset({BACK, HOME, NEXT_PAGE, PREVIOUS_PAGE})

# Format specs a placeholder may carry: ``{balance:money}``.
FORMAT_SPECS = frozenset({"", "money", "date", "month", "datetime", "time", "kwh", "number", "label", "token"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class OptionSpec(_Frozen):
    """A numbered choice. ``when`` hides it unless the condition holds on the session context.

    ``key`` is the number the customer types; by default the option's position in the declared
    list (hidden options keep their place, so the others never renumber). Two options may share
    a key when their conditions exclude each other (an "on" and an "off" label of one toggle).

    ``after_items: true`` (on a list menu, declared after its other options) shows the option under the
    list's items, numbered one past the last of them: a Cancel under the mobile-money operators, so that
    the operators keep the numbers customers learned (``3*1*1``). Its number is then the list's length
    plus one (``4. Annuler`` under three operators), fixed by the configuration rather than the YAML.

    ```yaml
    options: [{label: {fr: Annuler, en: Cancel}, target: pay_wallet_cancelled, after_items: true}]
    ```
    """

    label: Texts
    target: str
    when: str | None = None
    key: str | None = Field(default=None, pattern=r"^[1-9][0-9]?$")
    after_items: bool = False

    @model_validator(mode="after")
    def _one_numbering(self) -> OptionSpec:
        if self.after_items and self.key is not None:
            raise ValueError("an option numbered after the items (after_items) takes no key")
        return self


class ItemsSpec(_Frozen):
    """Options built from a list in the context, numbered after the static options and paged.

    ```yaml
    items: {from: bills, label: {fr: "{period:month} {amount:money}"}, store: bill, target: bill_detail}
    ```
    """

    source: str = Field(alias="from")
    label: Texts
    store: str
    target: str


class ValidatorSpec(_Frozen):
    """How an ``input`` node checks what the user typed.

    Types: ``digits`` (min_len, max_len), ``amount`` (min, max; whole, spaces and a trailing
    ``FCFA``/``F``/``CFA``/``XOF`` allowed: ``5 000 FCFA``), ``account_number``
    (pattern, default seven digits), ``regex`` (pattern), ``date`` (DDMMYYYY or DD/MM/YYYY),
    ``pin`` (four digits), ``number`` (min, max; decimals allowed), ``text`` (free text in the
    customer's words, up to ``max_len`` characters, default 160), ``confirm_pin`` (a chat
    confirmation: ``OUI 1234`` / ``YES 1234``, the value is the PIN alone).
    """

    type: Literal["digits", "amount", "account_number", "regex", "date", "pin", "number", "text", "confirm_pin"]
    min: float | None = None
    max: float | None = None
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None


class RouteSpec(_Frozen):
    when: str
    target: str


class Resolver(Protocol):
    """What a node that shows nothing (action, router) needs from the engine to pass through."""

    def run_step(self, node: ActionNode) -> str:
        """Run the node's dialog step; the node its outcome leads to (the engine ends the session
        politely when the outcome is not routed)."""

    def holds(self, when: str) -> bool:
        """Whether the condition holds on the session context."""


class _NodeBase(_Frozen):
    """What every node kind answers about itself, so the engine, the preview and the linter never
    dispatch on the kind: a new kind is one class. The defaults suit a screen with no choices.

    ``resume`` names the task on the offer a redial gets after a drop, filled from the dropped
    session's context; declared on a node a session can be resumed at (an input, a ``confirm: true``
    menu) or on the action that opens a PIN gate (for a drop behind it). Without one the offer is
    the system text ``resume`` ("Continue where you left off?").

    ```yaml
    pay_confirm:
      kind: menu
      confirm: true
      resume: {fr: "Reprendre votre paiement de {pay_amount:money} ?", en: "Resume your payment of {pay_amount:money}?"}
    ```
    """

    shortcut: str | None = None
    samples: dict[str, Any] = Field(default_factory=dict)
    resume: Texts | None = None

    shows: ClassVar[bool] = True          # False: passes through without a screen (``resolve``)
    ends: ClassVar[bool] = False          # its screen closes the session
    takes_value: ClassVar[bool] = False   # the customer types a value a validator checks
    error_key: ClassVar[str] = "invalid_choice"   # the system text for an answer it does not take

    def body(self) -> Texts:
        """The text the screen shows (empty for a node that shows nothing)."""
        # the instance's fields, not getattr: a missing attribute goes through pydantic's slow __getattr__
        return self.__dict__.get("text") or {}

    def body_after_error(self) -> Texts:
        """The text under the error line after an answer the node does not take."""
        return self.body()

    def choices(self) -> tuple[OptionSpec, ...]:
        """The declared numbered options."""
        return ()

    def item_list(self) -> ItemsSpec | None:
        """Options built from a list in the context, if the kind has them."""
        return None

    def edges(self) -> list[tuple[str, str]]:
        """The ``(label, target)`` pairs leaving the node."""
        found = [(f"option {i}", o.target) for i, o in enumerate(self.choices(), 1)]
        items = self.item_list()
        if items is not None:
            found.append(("items", items.target))
        return found

    def texts(self) -> Iterator[tuple[str, Texts]]:
        """Every translated text of the node, named for a lint message."""
        for attr in ("text", "error", "reask", "resume"):
            value = self.__dict__.get(attr)
            if value:
                yield attr, value
        for i, option in enumerate(self.choices(), 1):
            yield f"option {i} label", option.label
        items = self.item_list()
        if items is not None:
            yield "items label", items.label

    def is_secret(self) -> bool:
        """Whether what the customer types here is a secret (a PIN): kept out of the session."""
        return False

    def is_mid_task(self) -> bool:
        """Whether a session dropped here is in the middle of a task (offered back on redial)."""
        return False

    def resolve(self, hop: Resolver) -> str:
        """Where a node that shows nothing leads now."""
        raise TypeError(f"node kind '{getattr(self, 'kind', '?')}' shows a screen; it does not pass through")


class MenuNode(_NodeBase):
    """A screen of numbered choices.

    ```yaml
    home:
      kind: menu
      text: {fr: "Bienvenue", en: "Welcome"}
      options:
        - {label: {fr: Solde, en: Balance}, target: balance}
    ```
    """

    kind: Literal["menu"]
    text: Texts
    options: tuple[OptionSpec, ...] = ()
    items: ItemsSpec | None = None
    # ``confirm: true``: this screen asks to confirm a pending task (pay, file, record). A session
    # dropped here is offered back on redial ("Continue where you left off?"), as is one dropped
    # on an ``input`` node; a session dropped on any other screen is not.
    confirm: bool = False

    def choices(self) -> tuple[OptionSpec, ...]:
        return self.options

    def item_list(self) -> ItemsSpec | None:
        return self.items

    def is_mid_task(self) -> bool:
        return self.confirm


class InputNode(_NodeBase):
    """Asks for a value, checks it, stores it in the context under ``store`` and goes to ``next``.

    ```yaml
    link_account:
      kind: input
      text: {fr: "Numero de compte:", en: "Account number:"}
      validator: {type: account_number}
      store: account_number
      next: link_check
    ```
    ``sensitive: true`` (PINs) keeps the value out of the saved session: only the steps of
    the same hop see it.

    ``options`` offers numbered choices beside the field: an answer that is exactly the key of a
    choice shown goes to its target, anything else is the value. A key must be one the validator
    could never take (``1`` where a code has 6 digits: ``python -m menus lint`` checks it), and, as
    on a menu, no navigation key (``0`` is Back):

    ```yaml
    link_code:
      kind: input
      text: {fr: "Entrez le code:", en: "Enter the code:"}
      validator: {type: regex, pattern: "^[0-9]{6}$"}
      options: [{label: {fr: "Renvoyer le code", en: "Send the code again"}, target: link_code_resend}]
      ...
    ``` ``reask`` is the prompt under the ``error`` line when ``text`` itself
    reports the last answer ("Wrong code. Enter the code:"), so that a value of the wrong format
    reads as one message, the format and the question, not as two errors:

    ```yaml
    pin_code_wrong:
      kind: input
      text: {fr: "Code incorrect. Entrez le code:", en: "Wrong code. Enter the code:"}
      error: {fr: "Le code a 6 chiffres.", en: "The code has 6 digits."}
      reask: {fr: "Entrez le code:", en: "Enter the code:"}
      ...
    ```
    """

    kind: Literal["input"]
    text: Texts
    validator: ValidatorSpec
    store: str
    next: str
    sensitive: bool = False
    error: Texts | None = None
    reask: Texts | None = None
    options: tuple[OptionSpec, ...] = ()

    takes_value: ClassVar[bool] = True
    error_key: ClassVar[str] = "invalid_input"

    def body_after_error(self) -> Texts:
        return self.reask or self.text

    def choices(self) -> tuple[OptionSpec, ...]:
        return self.options

    def edges(self) -> list[tuple[str, str]]:
        return [("next", self.next), *super().edges()]

    def is_secret(self) -> bool:
        return self.sensitive

    def is_mid_task(self) -> bool:
        return True


class ActionNode(_NodeBase):
    """Calls a dialog step and routes on its outcome; shows nothing itself.

    ```yaml
    balance:
      kind: action
      step: billing.balance
      outcomes: {ok: balance_show, backend_down: sorry}
    complaint_open:
      kind: action
      step: incidents.open_ticket
      commit: [ok, kept]           # or `commit: true` for every outcome
      outcomes: {ok: complaint_done, kept: complaint_kept}
    ```
    """

    kind: Literal["action"]
    step: str
    params: dict[str, Any] = Field(default_factory=dict)
    outcomes: dict[str, str]
    commit: bool | tuple[str, ...] = False
    """A commit point: once the step ran (``true``) or returned one of the listed outcomes, the
    journey before it is closed: Back and Home lead to the main menu, never into its confirmation."""

    shows: ClassVar[bool] = False

    def commits(self, outcome: str) -> bool:
        return self.commit is True or (isinstance(self.commit, tuple) and outcome in self.commit)

    def edges(self) -> list[tuple[str, str]]:
        return [(f"outcome '{k}'", v) for k, v in self.outcomes.items()]

    def resolve(self, hop: Resolver) -> str:
        return hop.run_step(self)


class RouterNode(_NodeBase):
    """Goes to the first route whose condition holds on the context, else to ``default``.

    ```yaml
    pick_account:
      kind: router
      routes: [{when: "account_count > 1", target: choose_account}]
      default: home
    ```
    """

    kind: Literal["router"]
    routes: tuple[RouteSpec, ...]
    default: str

    shows: ClassVar[bool] = False

    def edges(self) -> list[tuple[str, str]]:
        return [(f"route '{r.when}'", r.target) for r in self.routes] + [("default", self.default)]

    def resolve(self, hop: Resolver) -> str:
        return next((r.target for r in self.routes if hop.holds(r.when)), self.default)


class MessageNode(_NodeBase):
    """Shows text with the navigation keys; with ``next``, the listed options lead on.

    ```yaml
    balance_show:
      kind: message
      text: {fr: "Solde: {balance:money}", en: "Balance: {balance:money}"}
      options: [{label: {fr: Factures, en: Bills}, target: bills}]
    ```
    """

    kind: Literal["message"]
    text: Texts
    options: tuple[OptionSpec, ...] = ()

    def choices(self) -> tuple[OptionSpec, ...]:
        return self.options


class EndNode(_NodeBase):
    """Shows its text and closes the session.

    ```yaml
    bye: {kind: end, text: {fr: "Merci.", en: "Thank you."}}
    ```
    """

    kind: Literal["end"]
    text: Texts

    ends: ClassVar[bool] = True


Node = Annotated[
    MenuNode | InputNode | ActionNode | RouterNode | MessageNode | EndNode,
    Field(discriminator="kind"),
]
NODE_KINDS = {"menu": MenuNode, "input": InputNode, "action": ActionNode,
              "router": RouterNode, "message": MessageNode, "end": EndNode}


class FlowSpec(_Frozen):
    """One conversation graph. ``start`` is entered on a new session, ``home`` on ``00``.

    ``home`` is the main menu, or a router choosing what a caller's main menu is (a caller with no
    account is sent to the link offer): then ``main_menu`` names the menu itself, the root of the
    history (reaching it leaves nothing to go back to) where a dialled shortcut is followed.

    ``guests: true`` opens it to a conversation nobody vouched for (a chatbot user not signed in): its
    steps must read and change no customer's data (``python -m menus lint`` reports any step not marked
    ``@step(..., guests=True)``). Such a conversation runs in no other flow.

    ``keeps`` names context keys a new command of the same user carries into its new session of this
    flow, within the channel's idle window (SMS, WhatsApp, chatbot): the account chosen among several,
    so that ``CONSO`` after ``SOLDE`` does not ask again. A new USSD dial starts without them.

    ```yaml
    main: {start: identify, home: home, keeps: [selected_account], nodes: {...}}
    ```"""

    version: str = "1"
    start: str
    home: str
    main_menu: str = ""
    guests: bool = False
    keeps: tuple[str, ...] = ()
    nodes: dict[str, Node] = Field(default_factory=dict)

    @property
    def root(self) -> str:
        """The main menu screen: ``main_menu``, or ``home`` when that is the menu."""
        return self.main_menu or self.home


class ChannelSpec(_Frozen):
    max_chars: int
    charset: Literal["gsm7", "ucs2", "unicode"] = "unicode"
    ucs2_max_chars: int = 0
    prefix_budget: int = 0


class ArgumentSpec(_Frozen):
    """What may follow a keyword (``PAYER 5000``): checked like an input and stored in the context.

    ```yaml
    argument:
      store: keyword_amount
      validator: {type: amount, min: 1, max: 100000000}
      required: true
      usage: {fr: "Envoyez PAYER suivi du montant, ex: PAYER 5000.", en: "Text PAY and the amount, e.g. PAY 5000."}
    ```
    A ``required`` argument missing, or any argument that does not pass its validator, answers the
    keyword's ``usage`` line (one per language, checked by the linter) and ends there; an optional
    argument left out is simply absent. Without a ``usage``, such a message gets the channel's
    ``unknown`` node (the help)."""

    store: str
    validator: ValidatorSpec
    required: bool = False
    usage: dict[str, str] = Field(default_factory=dict)


class KeywordEntry(_Frozen):
    """A command word of a chat-style channel (SMS, WhatsApp) and the node it starts at.

    ```yaml
    balance:
      words: {fr: [SOLDE], en: [BALANCE]}
      node: balance
      argument: {store: keyword_account, validator: {type: account_number}}
    ```
    Words match case-, accent- and typo-tolerantly (one letter off, from five letters). The
    word's language is the conversation's until the customer's own is known. ``direct: true``
    starts at the node itself; otherwise the flow's start runs first (who is writing, which
    account) and the node follows once the main menu is reached.
    """

    words: dict[str, tuple[str, ...]]
    node: str
    flow: str | None = None
    argument: ArgumentSpec | None = None
    direct: bool = False


class IntentEntry(_Frozen):
    """A chatbot intent (Rasa) and the node it starts at; same ``flow``/``direct`` rules as keywords."""

    node: str
    flow: str | None = None
    direct: bool = False


class ChannelEntries(_Frozen):
    """A channel's ways in: USSD service codes (``"*"``: any) to a flow, keywords, intents.

    ```yaml
    entry_points:
      ussd: {"*": main}                      # short form: codes only
      sms:
        codes: {"*": main}
        unknown: sms_help                    # an unknown keyword, a missing argument
        keywords: {help: {words: {fr: [AIDE], en: [HELP]}, node: sms_help, direct: true}}
    ```
    """

    codes: dict[str, str] = Field(default_factory=dict)
    keywords: dict[str, KeywordEntry] = Field(default_factory=dict)
    intents: dict[str, IntentEntry] = Field(default_factory=dict)
    unknown: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _codes_only(cls, data: Any) -> Any:
        # The short form ``{"*": main}``: a mapping of codes to flow names.
        if isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()) \
                and not set(data) & {"codes", "keywords", "intents", "unknown"}:
            return {"codes": dict(data)}
        return data


class IncludedNodes(_Frozen):
    """An included file: more nodes for one flow, or the same nodes for several (``flow: [main, guest]``:
    a journey self-contained enough to be offered in each, such as the bill simulator)."""

    flow: str | tuple[str, ...]
    nodes: dict[str, Node]


class MenuSet(_Frozen):
    languages: tuple[str, ...]
    default_language: str
    # Screen sizes now come from the channel adapters; a menu file may still declare channels
    # of its own (tests measure screens against them).
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    entry_points: dict[str, ChannelEntries] = Field(default_factory=dict)
    system_texts: dict[str, Texts]
    labels: dict[str, Texts] = Field(default_factory=dict)
    """Words for coded values, shown with ``{status:label}``: ``{unpaid: {fr: impayee, en: unpaid}}``."""
    samples: dict[str, Any] = Field(default_factory=dict)
    include: tuple[str, ...] = ()
    flows: dict[str, FlowSpec]
    brand: Brand = Field(default_factory=Brand)
    """The operator's name, help line and greeting, filled into ``{brand}`` etc. at load."""
