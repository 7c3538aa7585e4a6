"""Read a rendered page the way a test states its expectations: elements by attribute,
with their text (whitespace collapsed) — no HTML library needed."""

from __future__ import annotations

from html.parser import HTMLParser

from attrs import field, frozen

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@frozen
class Element:
    tag: str
    attrs: dict[str, str]
    text: str
    children: list[Element] = field(factory=list)

    def find(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Descendants with ``tag`` and every attribute given (``None``: just present;
        ``data_stage`` stands for ``data-stage``)."""
        found = []
        for child in self.children:
            if _matches(child, tag, attrs):
                found.append(child)
            found.extend(child.find(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str | None) -> Element:
        [element] = self.find(tag, **attrs)
        return element


def _matches(element: Element, tag: str | None, attrs: dict[str, str | None]) -> bool:
    if tag is not None and element.tag != tag:
        return False
    for name, value in attrs.items():
        key = name.replace("_", "-")
        if key not in element.attrs or (value is not None and element.attrs[key] != value):
            return False
    return True


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str], list[str], list[Element]]] = [
            ("#root", {}, [], [])
        ]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in VOID:
            self.stack[-1][3].append(Element(tag, values, ""))
        else:
            self.stack.append((tag, values, [], []))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or all(open_tag != tag for open_tag, *_ in self.stack[1:]):
            return
        while True:  # elements left open inside (an <option> without </option>) end too
            name, attrs, parts, children = self.stack.pop()
            text = " ".join("".join(parts).split())
            self.stack[-1][2].append(" " + "".join(parts) + " ")
            self.stack[-1][3].append(Element(name, attrs, text, children))
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1][2].append(data)


def parse(html: str) -> Element:
    """The page as a tree of elements (a ``#root`` element holds the top ones)."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    _, _, parts, children = parser.stack[0]
    return Element("#root", {}, " ".join("".join(parts).split()), children)
