#!/usr/bin/env python3
"""Checks that every internal link of a built HTML site resolves.

    python3 scripts/check_links.py docs/book

Reads every .html file under the folder. Each relative href or src must name a file that
exists inside the folder, and each #fragment must name an id (or an <a name>) of the page it
points to. Links with a scheme (https:, mailto:, …) or starting with // are external and are not
checked. A path starting with / and a <base href> that is a path (mdBook's 404 page has one)
are taken as relative to the folder's root. Prints each broken link with the page it is on, and exits 1 if there is any.
Standard library only.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    """The ids, links and base of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []  # (attribute, value, line)
        self.base = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id",) + (("name",) if tag == "a" else ()):
            if attrs.get(name):
                self.ids.add(attrs[name])
        if tag == "base" and attrs.get("href"):
            self.base = attrs["href"]
        for name in ("href", "src"):
            value = attrs.get(name)
            if value is not None:
                self.links.append((name, value, self.getpos()[0]))

    handle_startendtag = handle_starttag


def is_external(url):
    parts = urlsplit(url)
    return bool(parts.scheme) or url.startswith("//")


def main(argv):
    if len(argv) != 2:
        print("usage: check_links.py SITE_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if not root.is_dir():
        print(f"check_links.py: {argv[1]} is not a folder (build the site first)", file=sys.stderr)
        return 2

    pages = {}
    for path in sorted(root.rglob("*.html")):
        page = Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        page.close()
        pages[path] = page

    broken = []
    checked = 0
    for path, page in pages.items():
        here = path.relative_to(root)
        if page.base and not is_external(page.base) and page.base.startswith("/"):
            folder = PurePosixPath(page.base.lstrip("/"))
        else:
            folder = PurePosixPath(here.parent.as_posix())
        for attribute, value, line in page.links:
            value = value.strip()
            if not value or is_external(value) or value.startswith("javascript:"):
                continue
            checked += 1
            parts = urlsplit(value)
            target = path
            if parts.path:
                link_path = unquote(parts.path)
                if link_path.startswith("/"):
                    joined = PurePosixPath(link_path.lstrip("/"))
                else:
                    joined = folder / link_path
                resolved = (root / joined.as_posix()).resolve()
                if resolved.is_dir():
                    resolved = resolved / "index.html"
                if root not in resolved.parents and resolved != root:
                    broken.append((here, line, value, "points outside the site"))
                    continue
                if not resolved.is_file():
                    broken.append((here, line, value, "no such file"))
                    continue
                target = resolved
            if parts.fragment and attribute == "href":
                fragment = unquote(parts.fragment)
                target_page = pages.get(target)
                if target_page is None:
                    broken.append((here, line, value, "a fragment on a page that is not HTML"))
                elif fragment not in target_page.ids and parts.fragment not in target_page.ids:
                    name = target.relative_to(root)
                    broken.append((here, line, value, f"no id `{fragment}` in {name}"))

    for here, line, value, why in broken:
        print(f"{here}:{line}: broken link {value}: {why}")
    if broken:
        print(f"{len(broken)} broken links of {checked} internal links in {len(pages)} pages", file=sys.stderr)
        return 1
    print(f"{checked} internal links in {len(pages)} pages: all resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
