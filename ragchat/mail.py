"""E-mail: saved messages (.eml), mailboxes (.mbox) and Outlook messages (.msg).

A message is a page: its subject is the heading, From, To, Cc and Date head its text, then
the plain-text body (else the HTML body's visible text). Attachments that ragchat can read
(a PDF, a Word file, another message...) are read as pages of their own under the subject and
the attachment's name; the others are named in the file's notes. A mailbox is one page per
message, cited "message N".

.eml and .mbox are read by the standard library's ``email`` (``policy.default``); .msg, an
OLE2 file of MAPI properties, through olefile (the properties themselves are read here: the
one library for them, extract-msg, is GPL-licensed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import struct
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragchat.errors import LoadError
from ragchat.pages import Block, Loader, Page, html_page, paragraph_blocks, read_with
from ragchat.pagewriter import clean

MAX_DEPTH = 3  # messages attached to messages attached to messages
MAX_ATTACHMENTS = 50  # per message
MAX_MESSAGES = 10_000  # per mailbox

# The loader for a file's suffix, or None (loaders.loader_for, handed in by loaders.py, which
# registers these loaders: an attachment is read as a file of its own).
LoaderFor = Callable[[Path], Loader | None]


def message_page(
    subject: str,
    headers: Iterable[tuple[str, str]],
    body: str,
    html: bool,
    number: int | None = None,
    label: str = "",
) -> Page:
    """The page of one message: the headers, then the body's paragraphs, under the subject."""
    heading = (subject.strip() or "(no subject)",)
    head = "\n".join(f"{name}: {clean(value)}" for name, value in headers if clean(value))
    if html:
        inner = html_page(body)
        blocks = [replace(b, headings=heading + b.headings) for b in inner.blocks]
        text_body = inner.text
    else:
        text_body = body.replace("\r\n", "\n").replace("\r", "\n")
        blocks = paragraph_blocks(text_body, headings=heading)
    text = f"{head}\n\n{text_body}" if head else text_body
    offset = len(text) - len(text_body)
    blocks = [replace(b, start=b.start + offset, end=b.end + offset) for b in blocks]
    if head:
        blocks.insert(0, Block(0, len(head), heading))
    return Page(text=text, number=number, blocks=blocks, label=label)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Attachments:
    """A message's attachments: those ragchat can read become pages of their own (under the
    subject and the attachment's name, cited "NAME" or "NAME, page N"); the others are named
    in one note of the message's page."""

    def __init__(
        self, page: Page, loader_for: LoaderFor, number: int | None = None, label: str = ""
    ) -> None:
        self.page, self.number, self.label = page, number, label
        self.loader_for = loader_for
        self.heading = page.blocks[0].headings[0] if page.blocks else "(no subject)"
        self.pages: list[Page] = []
        self.skipped: list[str] = []
        self.count = 0

    def full(self) -> bool:
        self.count += 1
        if self.count > MAX_ATTACHMENTS:
            self.skip(f"those after the first {MAX_ATTACHMENTS}", "too many")
            return True
        return False

    def skip(self, name: str, why: str) -> None:
        self.skipped.append(f"{_name(name) or '(unnamed)'} ({why})")

    def message(self, read: Any) -> None:
        """An attached message: ``read()`` gives its pages, read one level deeper."""
        if _depth[0] + 1 >= MAX_DEPTH:
            self.skip("a message", f"nested {MAX_DEPTH} deep")
            return
        with _nested():
            found = read()
        self.pages += [_under(self.heading, p) for p in found]

    def add(self, name: str, data: bytes) -> None:
        """An attached file, read like a file of its own."""
        from ragchat.ocr import IMAGE_SUFFIXES

        name = _name(Path(name.replace("\\", "/")).name) or "attachment"
        suffix = Path(name).suffix.lower()
        if suffix in IMAGE_SUFFIXES:  # logos and signatures, mostly: not worth the OCR
            return self.skip(name, "an image")
        loader = self.loader_for(Path(name))
        if loader is None:
            return self.skip(name, f"unsupported type {suffix}" if suffix else "unsupported type")
        if _depth[0] + 1 >= MAX_DEPTH:
            return self.skip(name, f"nested {MAX_DEPTH} deep")
        with tempfile.TemporaryDirectory(prefix="ragchat-attachment-") as folder:
            path = Path(folder) / f"attachment{suffix}"
            path.write_bytes(data)
            try:
                with _nested():
                    inner = list(read_with(loader, path))  # before the file goes
            except LoadError as exc:
                return self.skip(name, str(exc))
        for page in inner:
            self.pages.append(
                replace(
                    page,
                    number=self.number,
                    offset=0,  # spans in this page's text, not in the attachment's
                    label=", ".join(x for x in (self.label, name, page.name) if x),
                    blocks=[
                        replace(b, headings=(self.heading, name, *b.headings)) for b in page.blocks
                    ],
                )
            )

    def close(self) -> list[Page]:
        """The message's page and its attachments' pages."""
        if self.skipped:
            self.page.notes.append("attachments skipped: " + ", ".join(self.skipped))
        return [self.page, *self.pages]


def _name(name: str) -> str:
    return clean(_CONTROL.sub("", name))


def _under(heading: str, page: Page) -> Page:
    return replace(page, blocks=[replace(b, headings=(heading, *b.headings)) for b in page.blocks])


_depth = [0]  # how many messages deep the attachment being read is


@contextlib.contextmanager
def _nested() -> Any:
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1


def email_pages(
    message: Any, loader_for: LoaderFor, number: int | None = None, label: str = ""
) -> list[Page]:
    """A message parsed by ``email`` (policy.default): its page, then its attachments'."""
    subject = str(message.get("subject", "") or "")
    headers = [(name, str(message.get(name, "") or "")) for name in ("From", "To", "Cc", "Date")]
    body, html = _email_body(message)
    attachments = Attachments(
        message_page(subject, headers, body, html, number, label), loader_for, number, label
    )
    for part in message.iter_attachments():
        if attachments.full():
            break
        name = part.get_filename() or ""
        if part.get_content_type() == "message/rfc822" and not name:
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if hasattr(inner, "get"):
                attachments.message(
                    lambda inner=inner: email_pages(inner, loader_for, number, label)
                )
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:  # a payload that does not decode
            data = None
        if isinstance(data, bytes) and data:
            attachments.add(name or f"attachment{_extension(part)}", data)
        else:
            attachments.skip(name, "empty or undecodable")
    return attachments.close()


def _extension(part: Any) -> str:
    import mimetypes

    return mimetypes.guess_extension(part.get_content_type()) or ""


def _email_body(message: Any) -> tuple[str, bool]:
    """The plain-text body, else the HTML one (True when HTML)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", False
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):  # an unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return "", False
    return content, part.get_content_subtype() == "html"


def _parse_email(data: bytes) -> Any:
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(data)


def load_eml(path: Path, loader_for: LoaderFor) -> list[Page]:
    return email_pages(_parse_email(path.read_bytes()), loader_for)


def load_mbox(path: Path, loader_for: LoaderFor) -> list[Page]:
    import mailbox

    box = mailbox.mbox(path, factory=None, create=False)
    pages: list[Page] = []
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            if number > MAX_MESSAGES:
                pages[0].notes.append(f"messages after the first {MAX_MESSAGES:,} not read")
                break
            message = _parse_email(box.get_bytes(key))
            pages += email_pages(message, loader_for, number, f"message {number}")
    finally:
        box.close()
    if not pages:
        raise LoadError("no messages in the mailbox")
    return pages


# Outlook .msg: an OLE2 compound file whose streams are MAPI properties, named
# __substg1.0_TTTTYYYY (tag TTTT, type YYYY: 001F UTF-16, 001E 8-bit, 0102 binary).
_SUBJECT, _BODY, _HTML = 0x0037, 0x1000, 0x1013
_SENDER_NAME, _SENDER_EMAIL, _DISPLAY_TO, _DISPLAY_CC = 0x0C1A, 0x0C1F, 0x0E04, 0x0E03
_SUBMIT_TIME, _DELIVERY_TIME = 0x0039, 0x0E06
_ATTACH_LONG_NAME, _ATTACH_NAME, _ATTACH_DATA = 0x3707, 0x3704, 0x3701
_CODEPAGE = 0x3FFD


class _MapiFolder:
    """The properties of a message or attachment storage in a .msg file."""

    def __init__(self, ole: Any, prefix: list[str], top: bool) -> None:
        self.ole, self.prefix, self.top = ole, prefix, top

    def _stream(self, name: str) -> bytes | None:
        path = [*self.prefix, name]
        if self.ole.exists("/".join(path)) and self.ole.get_type(path) == 2:  # a stream
            return bytes(self.ole.openstream(path).read())
        return None

    def text(self, tag: int) -> str:
        data = self._stream(f"__substg1.0_{tag:04X}001F")
        if data is not None:
            return data.decode("utf-16-le", errors="replace").rstrip("\x00")
        data = self._stream(f"__substg1.0_{tag:04X}001E")
        if data is not None:
            return data.decode(self.codepage(), errors="replace").rstrip("\x00")
        return ""

    def binary(self, tag: int) -> bytes | None:
        return self._stream(f"__substg1.0_{tag:04X}0102")

    def fixed(self) -> dict[int, bytes]:
        """The fixed-size properties (numbers, times): 16-byte entries after a header."""
        data = self._stream("__properties_version1.0") or b""
        header = 32 if self.top else 8  # the message's own header is longer
        values = {}
        for at in range(header, len(data) - 15, 16):
            tag = struct.unpack_from("<I", data, at)[0]
            values[tag >> 16] = data[at + 8 : at + 16]
        return values

    def codepage(self) -> str:
        value = self.fixed().get(_CODEPAGE)
        if value is not None:
            with contextlib.suppress(LookupError):
                name = f"cp{struct.unpack_from('<I', value)[0]}"
                "".encode(name)
                return name
        return "cp1252"

    def time(self, *tags: int) -> str:
        values = self.fixed()
        for tag in tags:
            if tag in values:
                ticks = struct.unpack_from("<Q", values[tag])[0]  # 100 ns since 1601
                with contextlib.suppress(OverflowError, ValueError):
                    moment = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                        microseconds=ticks // 10
                    )
                    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")
        return ""


_ATTACHMENT = re.compile(r"^__attach_version1\.0_#[0-9A-Fa-f]{8}$")


def load_msg(path: Path, loader_for: LoaderFor) -> list[Page]:
    import olefile

    if not olefile.isOleFile(str(path)):
        raise LoadError("not an Outlook message (no OLE2 header)")
    with olefile.OleFileIO(str(path)) as ole:
        return _msg_pages(ole, [], loader_for)


def _msg_pages(ole: Any, prefix: list[str], loader_for: LoaderFor) -> list[Page]:
    message = _MapiFolder(ole, prefix, top=not prefix)
    subject = message.text(_SUBJECT)
    sender = message.text(_SENDER_NAME)
    address = message.text(_SENDER_EMAIL)
    if address and "@" in address and address not in sender:
        sender = f"{sender} <{address}>" if sender else address
    headers = [
        ("From", sender),
        ("To", message.text(_DISPLAY_TO)),
        ("Cc", message.text(_DISPLAY_CC)),
        ("Date", message.time(_SUBMIT_TIME, _DELIVERY_TIME)),
    ]
    body, html = message.text(_BODY), False
    if not body.strip():
        markup = message.binary(_HTML)
        if markup:
            body, html = markup.decode(message.codepage(), errors="replace"), True
    attachments = Attachments(message_page(subject, headers, body, html), loader_for)
    storages = {
        entry[len(prefix)]
        for entry in ole.listdir(streams=True, storages=True)
        if len(entry) > len(prefix) and entry[: len(prefix)] == prefix
    }
    for storage in sorted(name for name in storages if _ATTACHMENT.match(name)):
        if attachments.full():
            break
        attachment = _MapiFolder(ole, [*prefix, storage], top=False)
        name = attachment.text(_ATTACH_LONG_NAME) or attachment.text(_ATTACH_NAME)
        inner = [*prefix, storage, f"__substg1.0_{_ATTACH_DATA:04X}000D"]
        if ole.exists("/".join(inner)):  # an attached message, as a storage of its own
            attachments.message(lambda inner=inner: _msg_pages(ole, inner, loader_for))
            continue
        data = attachment.binary(_ATTACH_DATA)
        if data:
            attachments.add(name or "attachment", data)
        else:
            attachments.skip(name, "no data")
    return attachments.close()
