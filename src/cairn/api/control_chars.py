"""Control characters at the edge (SPEC §12 "Control characters"): a NUL (U+0000) anywhere in a
request is refused before anything runs, as are the other C0 controls where no client has a use
for them, and lone surrogates (no database can store one).

- path and query string (percent-decoded): any C0 control or DEL;
- header values: any C0 control but tab;
- JSON body strings (keys too): any C0 control but tab, newline and carriage return, and lone
  surrogates (``"\\ud800"``). Raw controls are already malformed JSON; an escaped one can only
  arrive as ``\\u00XX`` or ``\\uDXXX``, so a body without ``\\u`` is never decoded here.

Each refusal is a 400 ``request.control_character`` problem naming the place
(``body.customer_name``, ``path``, ``query.status``, ``header.x-foo``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_to_bytes

CODE: Final = "request.control_character"

_URL_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")
_HEADER_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TEXT_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _url_bad(raw: bytes) -> bool:
    return bool(_URL_CONTROL.search(raw)) or (
        b"%" in raw and bool(_URL_CONTROL.search(unquote_to_bytes(raw)))
    )


def in_path(raw_path: bytes) -> bool:
    """``raw_path`` (as sent, before percent-decoding) holds a control character."""
    return _url_bad(raw_path)


def in_query(query: bytes) -> str | None:
    """The first query parameter whose name or value holds a control character."""
    if not _url_bad(query.replace(b"+", b" ")):
        return None
    text = query.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
        if _URL_CONTROL.search((name + value).encode("latin-1")):
            clean = _URL_CONTROL.sub(b"?", name.encode("latin-1")).decode("latin-1")
            return f"query.{clean}"
    return "query"


def in_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first header whose value (or name) holds a control character."""
    for name, value in headers:
        if _HEADER_CONTROL.search(value) or _HEADER_CONTROL.search(name):
            clean = _HEADER_CONTROL.sub(b"?", name).decode("latin-1")
            return f"header.{clean}"
    return None


def in_body(body: bytes) -> str | None:
    """The location of the first JSON string holding a refused character, if ``body`` is
    JSON; a body that does not parse is left to the route (400 app.malformed_json)."""
    if b"\\u" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    try:
        return in_document(document, "body")
    except RecursionError:  # pragma: no cover - json.loads refuses deeper documents first
        return None


def in_document(document: Any, where: str) -> str | None:
    """The location (``<where>.items.0.sku``) of the first string of a decoded document (dicts,
    lists, strings: a JSON body, a gRPC request's fields) holding a refused character."""
    return _walk(document, where)


def _walk(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        return where if _TEXT_CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            place = f"{where}.{_TEXT_CONTROL.sub('?', key)}"
            if _TEXT_CONTROL.search(key):
                return place
            found = _walk(item, place)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _walk(item, f"{where}.{i}")
            if found:
                return found
    return None
