"""E-books: EPUB 2 and 3 (.epub).

An EPUB is a zip of XHTML chapters listed, in reading order, by the spine of its package
document (OPF). Read with the standard library: the zip (checked for bombs first), the
container and package XML through defusedxml, each chapter through the HTML loader
(BeautifulSoup). One page per chapter, in spine order; the chapter's title from the table of
contents (EPUB 3 nav or EPUB 2 NCX) heads its heading path. ebooklib, the library made for
EPUB, is AGPL-licensed and would add nothing this needs.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ragchat.archives import check_zip, parse_xml
from ragchat.errors import LoadError
from ragchat.pages import Page, decode_text, html_page

CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF = "{http://www.idpf.org/2007/opf}"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
ENCRYPTION = "{http://www.w3.org/2001/04/xmlenc#}"
HTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise LoadError(f"damaged EPUB ({name} is missing)") from None


def _resolve(base: str, href: str) -> str:
    """A reference inside the book, as a path in the zip (no fragment, no ..)."""
    return posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0])))


def load_epub(path: Path) -> list[Page]:
    check_zip(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        container = parse_xml(_read(archive, "META-INF/container.xml"), "container.xml")
        rootfile = container.find(f".//{CONTAINER}rootfile")
        package_path = rootfile.get("full-path", "") if rootfile is not None else ""
        package = parse_xml(_read(archive, package_path), package_path)
        base = posixpath.dirname(package_path)
        manifest = {
            item.get("id", ""): item
            for item in package.iter(OPF + "item")
            if item.get("id") and item.get("href")
        }
        encrypted = _encrypted(archive, names)
        titles = _toc_titles(archive, package, manifest, base)
        pages = []
        spine = package.find(OPF + "spine")
        for itemref in spine if spine is not None else []:
            item = manifest.get(itemref.get("idref", ""))
            if item is None or item.get("media-type") not in HTML_TYPES:
                continue
            name = _resolve(base, item.get("href", ""))
            if name in encrypted:
                raise LoadError("encrypted (DRM); ragchat reads only unencrypted e-books")
            if name not in names:
                continue
            chapter = html_page(decode_text(archive.read(name)))
            title = titles.get(name, "")
            if title:
                chapter.blocks = [
                    replace(
                        b,
                        headings=(
                            title,
                            *(h for h in b.headings if h.casefold() != title.casefold()),
                        ),
                    )
                    for b in chapter.blocks
                ]
            pages.append(chapter)
    if not pages:
        raise LoadError("no chapters in the EPUB's spine")
    return pages


def _encrypted(archive: zipfile.ZipFile, names: set[str]) -> set[str]:
    """Files the book says are encrypted (fonts often are, harmlessly; chapters mean DRM)."""
    if "META-INF/encryption.xml" not in names:
        return set()
    root = parse_xml(archive.read("META-INF/encryption.xml"), "encryption.xml")
    return {
        _resolve("", reference.get("URI", ""))
        for reference in root.iter(ENCRYPTION + "CipherReference")
    }


def _toc_titles(
    archive: zipfile.ZipFile, package: Any, manifest: dict[str, Any], base: str
) -> dict[str, str]:
    """Chapter file -> its title in the table of contents (the first entry pointing at it)."""
    titles: dict[str, str] = {}
    for item in manifest.values():  # EPUB 3: the navigation document
        if "nav" in (item.get("properties") or "").split():
            from bs4 import BeautifulSoup

            nav_path = _resolve(base, item.get("href", ""))
            soup = BeautifulSoup(decode_text(_read(archive, nav_path)), "html.parser")
            navs = soup.find_all("nav")
            toc = next((n for n in navs if "toc" in (n.get("epub:type") or "")), None)
            for link in (toc or (navs[0] if navs else soup)).find_all("a", href=True):
                name = _resolve(posixpath.dirname(nav_path), str(link["href"]))
                titles.setdefault(name, " ".join(link.get_text(" ").split()))
            if titles:
                return titles
    spine = package.find(OPF + "spine")
    ncx = manifest.get(spine.get("toc", "") if spine is not None else "")
    if ncx is None:
        ncx = next(
            (i for i in manifest.values() if i.get("media-type") == "application/x-dtbncx+xml"),
            None,
        )
    if ncx is not None:  # EPUB 2: the NCX
        ncx_path = _resolve(base, ncx.get("href", ""))
        root = parse_xml(_read(archive, ncx_path), ncx_path)
        for point in root.iter(NCX + "navPoint"):
            label = point.find(f"{NCX}navLabel/{NCX}text")
            content = point.find(NCX + "content")
            if label is not None and content is not None and content.get("src"):
                name = _resolve(posixpath.dirname(ncx_path), content.get("src", ""))
                titles.setdefault(name, " ".join((label.text or "").split()))
    return titles
