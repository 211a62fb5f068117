"""Checks that a page works for keyboard and screen-reader users and without JavaScript."""

from __future__ import annotations

from html.parser import HTMLParser


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str]] = []
        self.headings: list[int] = []
        self.th_without_scope = 0
        self.tables = 0
        self.captions = 0
        self.scripts = 0
        self.skip_links: list[str] = []
        self.html_lang = ""
        self.inline_handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        for name in attributes:
            if name.startswith("on") and tag != "form":
                self.inline_handlers.append(f"{tag}[{name}]")
        if tag == "html":
            self.html_lang = attributes.get("lang", "")
        elif tag == "label" and "for" in attributes:
            self.label_for.add(attributes["for"])
        elif tag in ("input", "select", "textarea"):
            if attributes.get("type") not in ("hidden", "submit", "button"):
                self.controls.append({"tag": tag, **attributes})
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append(int(tag[1]))
        elif tag == "th" and "scope" not in attributes:
            self.th_without_scope += 1
        elif tag == "table":
            self.tables += 1
        elif tag == "caption":
            self.captions += 1
        elif tag == "script" and not (
            attributes.get("src", "").startswith("/static/") and "defer" in attributes
        ):
            # The portal's own deferred script only enhances (search-as-you-type); any other
            # script, inline or foreign, would make a page depend on JavaScript.
            self.scripts += 1
        elif tag == "a" and attributes.get("class") == "skip-link":
            self.skip_links.append(attributes.get("href", ""))


def accessibility_problems(html: str) -> list[str]:
    """What a keyboard or screen-reader user would trip over on this page (empty when none)."""
    page = _Page()
    page.feed(html)
    problems = []
    if page.html_lang != "en":
        problems.append("the page has no lang")
    if page.skip_links != ["#main"] or "main" not in page.ids:
        problems.append("no skip link to #main")
    for control in page.controls:
        if not control.get("id") or control["id"] not in page.label_for:
            problems.append(f"{control['tag']} {control.get('name')!r} has no label")
    if page.headings.count(1) != 1:
        problems.append(f"{page.headings.count(1)} h1 headings")
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        if after > before + 1:
            problems.append(f"heading h{after} follows h{before}")
    if page.th_without_scope:
        problems.append(f"{page.th_without_scope} th without scope")
    if page.captions < page.tables:
        problems.append("a table without caption")
    if page.scripts or page.inline_handlers:
        problems.append("the page needs JavaScript")
    return problems
