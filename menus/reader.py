"""Reads one YAML file into plain data whose mappings remember their file and lines.

Built straight from the parser's events (libyaml's, when PyYAML has it): one Python object per
value, where composing YAML nodes first and reading them second made three (an event, a node, a
value) and cost most of the load of a large menu file. The data reads as ``yaml.safe_load`` reads
it (tags resolved by PyYAML's resolver, scalars other than strings built by its constructors,
anchors, aliases and merge keys); an alias is read afresh at each use, as the nodes were.

```python
data = read_yaml(Path("config/menus.yaml").read_bytes(), "config/menus.yaml")
data.line, data.key_lines["flows"]      # where the mapping and each of its keys are written
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from .brand import Brand, fill_brand

__all__ = ["LineDict", "read_yaml"]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_AS_WRITTEN = object()  # a plain scalar that resolves to a string: its text as it is
_EVERY_TEXT: frozenset[str | None] = frozenset()
_Parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None) or yaml.SafeLoader


class LineDict(dict):
    """A mapping that remembers where it stands in its file (slots: a large file has tens of
    thousands of them, and a ``__dict__`` each would double the objects to build)."""

    __slots__ = ("file", "key_line", "key_lines", "line")

    file: str
    line: int
    key_line: int              # the line of the key this mapping is the value of (0: none)
    key_lines: dict[str, int]

    @classmethod
    def at(cls, file: str, line: int) -> LineDict:
        """An empty mapping written at ``file:line``."""
        made = cls()
        made.file, made.line, made.key_line, made.key_lines = file, line, 0, {}
        return made


def read_yaml(raw: bytes, file: str, brand: Brand | None = None) -> Any:
    """The single document of ``raw`` (``None`` when empty), mappings as ``LineDict``.

    With a ``brand``, its names are filled into the strings as they are read (``fill_brand``,
    in the same pass; a text under a language key gets the greeting of that language).
    Raises ``yaml.YAMLError`` (a ``MarkedYAMLError`` with the line where it can)."""
    parser = _Parser(raw)
    try:
        return _Reader(parser.get_event, file, brand).document()
    finally:
        parser.dispose()


def _error(problem: str, event: Any, context: str = "while reading a mapping", at: Any = None) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(context, (at or event).start_mark, problem, event.start_mark)


class _Reader:
    """One pass over the events of one file; plain scalars are resolved (and, when they are not
    strings, constructed) once per distinct text: keys such as ``kind``, ``text``, ``fr`` and
    values such as ``true`` repeat thousands of times in a large file."""

    def __init__(self, get: Callable[[], Any], file: str, brand: Brand | None) -> None:
        self.get, self.file, self.brand = get, file, brand
        self.plain: dict[str, Any] = {}
        self.anchors: dict[str, list[Any]] = {}
        self.reading: set[str] = set()  # anchors whose value is being read: an alias to one loops
        self.resolver = yaml.resolver.Resolver()
        implicit = self.resolver.yaml_implicit_resolvers
        # The first characters PyYAML's resolvers are registered for; none to skip by when one is
        # registered for any first character (None).
        self.first_chars: frozenset[str | None] = frozenset(implicit) if None not in implicit else _EVERY_TEXT
        self.constructor = yaml.constructor.SafeConstructor()

    def document(self) -> Any:
        get = self.get
        get()  # the stream's start
        start = get()
        if start.__class__ is StreamEndEvent:
            return None
        root = self.value(get(), None)
        get()  # the document's end
        event = get()
        if event.__class__ is not StreamEndEvent:
            raise yaml.composer.ComposerError("expected a single document in the stream", start.start_mark,
                                              "but found another document", event.start_mark)
        return root

    def value(self, event: Any, language: str | None) -> Any:
        if event.__class__ is AliasEvent:
            return self.alias(event, language)
        if event.anchor is not None:
            return self.anchored(event, language)
        return self.unanchored(event, language)

    def unanchored(self, event: Any, language: str | None) -> Any:
        # A collection's tag (!!set, !!omap) is not read: a mapping is a mapping, a list a list.
        if event.__class__ is ScalarEvent:
            return self.scalar(event, language)
        if event.__class__ is MappingStartEvent:
            return self.mapping(event, language)
        return self.sequence(event, language)

    def scalar(self, event: Any, language: str | None) -> Any:
        tag, text = event.tag, event.value
        if tag is None or tag == "!":
            if event.implicit[0]:
                value = self.resolved(text)
                if value is not _AS_WRITTEN:
                    return self.construct(event, value) if value.__class__ is _Tag else value
            tag = _STR_TAG  # quoted, or tagged "!": a string, as PyYAML's resolver says
        if tag != _STR_TAG:
            return self.construct(event, tag)
        if self.brand is not None and "{" in text:
            return fill_brand(text, self.brand, language)
        return text

    def resolved(self, text: str) -> Any:
        """What a plain scalar reads as: ``_AS_WRITTEN`` for a string, a ``_Tag`` for the merge and
        value keys, else its value (a number, a boolean, None, a date)."""
        try:
            return self.plain[text]
        except KeyError:
            pass
        # PyYAML's resolver picks its candidates by the first character: a text starting with none of
        # theirs (most node ids, such as "j123_ask") is a string without trying their patterns.
        if self.first_chars is not _EVERY_TEXT and text[:1] not in self.first_chars:
            self.plain[text] = _AS_WRITTEN
            return _AS_WRITTEN
        tag = self.resolver.resolve(yaml.ScalarNode, text, (True, False))
        if tag == _STR_TAG:
            value: Any = _AS_WRITTEN
        elif tag in (_MERGE_TAG, _VALUE_TAG):
            value = _Tag(tag)
        else:
            value = self.constructor.construct_object(yaml.ScalarNode(tag, text), deep=True)
        self.plain[text] = value
        return value

    def construct(self, event: Any, tag: Any) -> Any:
        node = yaml.ScalarNode(str(tag), event.value, event.start_mark, event.end_mark, event.style)
        return self.constructor.construct_object(node, deep=True)

    def mapping(self, start: Any, language: str | None) -> LineDict:
        get, brand, plain = self.get, self.brand, self.plain
        result = LineDict()
        key_lines: dict[str, int] = {}
        result.file, result.line, result.key_line, result.key_lines = self.file, start.start_mark.line + 1, 0, key_lines
        merged: list[Any] = []
        while True:
            event = get()
            if event.__class__ is MappingEndEvent:
                break
            line = event.start_mark.line + 1
            # The key: most are plain or quoted strings, read in place.
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                key = event.value
                if event.implicit[0] and plain.get(key) is not _AS_WRITTEN:
                    key = self.key(event, start)
            else:
                key = self.key(event, start)
            if key is _MERGE:
                merged.append(self.value(get(), language))
                continue
            if key in result:
                raise _error(f"duplicate key {key!r}", event, at=start)
            # A text keyed by a language code gets its greeting in that language (as fill_brand does).
            inner = key if key.__class__ is str and len(key) == 2 else language
            event = get()
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                # A string (most values of a menu file), read in place; other scalars by ``scalar``.
                value = event.value
                if event.implicit[0] and plain.get(value) is not _AS_WRITTEN:
                    value = self.scalar(event, inner)
                elif brand is not None and "{" in value:
                    value = fill_brand(value, brand, inner)
            else:
                value = self.value(event, inner)
                if value.__class__ is LineDict:
                    value.key_line = line
            result[key] = value
            key_lines[key if key.__class__ is str else str(key)] = line
        return self.merge(result, merged, start) if merged else result

    def key(self, event: Any, start: Any) -> Any:
        """A key that is not a string as written: the merge key, a number, null, a tagged scalar."""
        if event.__class__ is ScalarEvent and event.anchor is None:
            tag = event.tag
            if tag is None or tag == "!":
                found = self.resolved(event.value) if event.implicit[0] else _AS_WRITTEN
                tag = found.tag if found.__class__ is _Tag else None
            if tag == _MERGE_TAG:
                return _MERGE
            if tag == _VALUE_TAG:
                return event.value  # PyYAML reads the value key "=" as a string
        key = self.value(event, None)
        try:
            hash(key)
        except TypeError:
            raise _error("a key that is a mapping or a list", event, at=start) from None
        return key

    def merge(self, own: LineDict, merged: list[Any], start: Any) -> LineDict:
        """Merge keys (``<<: *defaults`` or ``<<: [*a, *b]``) as PyYAML reads them: the mapping's own
        keys win, then the first mapping listed."""
        sources: list[LineDict] = []
        for value in merged:
            for source in value if isinstance(value, list) else [value]:
                if not isinstance(source, LineDict):
                    raise _error("a merge key (<<) takes a mapping or a list of mappings", start,
                                 "while reading a mapping")
                sources.append(source)
        result = LineDict.at(own.file, own.line)
        for source in reversed(sources):
            result.update(source)
            result.key_lines.update(source.key_lines)
        result.update(own)
        result.key_lines.update(own.key_lines)
        return result

    def sequence(self, start: Any, language: str | None) -> list[Any]:
        get, brand, plain, items = self.get, self.brand, self.plain, []
        while True:
            event = get()
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                value = event.value  # a string read in place, as in ``mapping``
                if event.implicit[0] and plain.get(value) is not _AS_WRITTEN:
                    value = self.scalar(event, language)
                elif brand is not None and "{" in value:
                    value = fill_brand(value, brand, language)
                items.append(value)
            elif event.__class__ is SequenceEndEvent:
                return items
            else:
                items.append(self.value(event, language))

    def anchored(self, start: Any, language: str | None) -> Any:
        """A value with an anchor: its events are kept, so that each alias reads it afresh."""
        events, depth = [start], 0 if start.__class__ is ScalarEvent else 1
        while depth:
            event = self.get()
            events.append(event)
            if event.__class__ is MappingStartEvent or event.__class__ is SequenceStartEvent:
                depth += 1
            elif event.__class__ is MappingEndEvent or event.__class__ is SequenceEndEvent:
                depth -= 1
        self.anchors[start.anchor] = events
        return self.replay(start.anchor, language)

    def alias(self, event: Any, language: str | None) -> Any:
        if event.anchor not in self.anchors:
            raise yaml.composer.ComposerError(None, None, f"found undefined alias '{event.anchor}'",
                                              event.start_mark)
        if event.anchor in self.reading:
            raise yaml.composer.ComposerError(None, None, f"alias '{event.anchor}' refers to itself",
                                              event.start_mark)
        return self.replay(event.anchor, language)

    def replay(self, anchor: str, language: str | None) -> Any:
        first, *rest = self.anchors[anchor]
        outer, self.get = self.get, iter(rest).__next__
        self.reading.add(anchor)
        try:
            return self.unanchored(first, language)
        finally:
            self.get = outer
            self.reading.discard(anchor)


class _Tag:
    """A plain scalar that resolves to a tag with no value of its own (the merge key ``<<``)."""

    __slots__ = ("tag",)

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __str__(self) -> str:
        return self.tag


_MERGE = _Tag(_MERGE_TAG)  # the key that merges mappings in
