"""The operator's brand: name, customer-service line and greeting, declared once under ``brand:``.

Texts write ``{brand}``, ``{help_line}`` or ``{greeting}``; the loader fills them in before the
menus are validated, so the linter measures every screen with the real words and a session
never needs them in its context. The default is a neutral demo brand: the product carries no
real company's name.

```yaml
brand:
  name: ElecNet
  help_line: "800 00 00"
  greeting: {fr: "Bienvenue chez ElecNet", en: "Welcome to ElecNet"}
```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BRAND_PLACEHOLDERS", "Brand", "fill_brand"]

BRAND_PLACEHOLDERS = ("brand", "help_line", "greeting")


class Brand(BaseModel):
    """Who the customer is talking to; every field has a neutral demo default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="ElecNet", min_length=1, max_length=20)
    help_line: str = Field(default="800 00 00", min_length=1, max_length=20)
    greeting: dict[str, str] = Field(default_factory=lambda: {"fr": "Bienvenue chez {brand}",
                                                              "en": "Welcome to {brand}"})


def _escape(text: str) -> str:
    # The filled text is still a format string: a brace in a brand name must stay literal.
    return text.replace("{", "{{").replace("}", "}}")


def fill_brand(data: Any, brand: Brand, language: str | None = None) -> Any:
    """``data`` (a YAML tree) with ``{brand}``, ``{help_line}`` and ``{greeting}`` filled in place.

    Mappings keyed by a language code fill ``{greeting}`` in that language; the tree's own
    containers are kept (the loader's line-aware dicts), only strings are replaced.
    """
    if isinstance(data, str):
        if "{" not in data:
            return data
        greeting = brand.greeting.get(language or "") or next(iter(brand.greeting.values()), "")
        out = data.replace("{greeting}", greeting)
        return out.replace("{brand}", _escape(brand.name)).replace("{help_line}", _escape(brand.help_line))
    if isinstance(data, dict):
        for key, value in data.items():
            data[key] = fill_brand(value, brand, key if isinstance(key, str) and len(key) == 2 else language)
        return data
    if isinstance(data, list):
        for position, value in enumerate(data):
            data[position] = fill_brand(value, brand, language)
        return data
    return data
