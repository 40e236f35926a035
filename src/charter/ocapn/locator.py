"""OCapN locators: where a peer lives, and sturdy references to objects on it.

Two serializations of each: the in-band Syrup record and the out-of-band
``ocapn://`` URI handed to people. The record's field order follows deployed
implementations and the conformance suite, ``<ocapn-peer transport designator
hints>``; the order written in the draft Locators.md (designator first) and the
older ``ocapn-node`` label are accepted on input, since the field types tell the two
orders apart. Hint keys are emitted as symbols and accepted as symbols or strings.

In URIs the designator, transport and hints are percent-encoded per RFC 3986 and
the swiss number, which is arbitrary bytes, is base64url without padding.

A location parsed from a record keeps that record and re-emits it unchanged, so a
location relayed in a signed certificate keeps the bytes its owner signed.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.codec.syrup import Record, Symbol
from charter.errors import CharterError

PEER_LABEL = Symbol("ocapn-peer")
LEGACY_PEER_LABEL = Symbol("ocapn-node")
STURDYREF_LABEL = Symbol("ocapn-sturdyref")

_URI_SAFE = "-._~"
_QUERY_SAFE = "-._~!$'()*,;:@/?"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class LocatorError(CharterError):
    """A locator record or URI is malformed."""

    code = "ocapn.locator"


class LocatorURIError(LocatorError):
    """An ``ocapn://`` URI does not follow the locator grammar."""

    code = "ocapn.locator.uri"


class LocatorRecordError(LocatorError):
    """A Syrup value is not a well-formed ``ocapn-peer`` or ``ocapn-sturdyref`` record."""

    code = "ocapn.locator.record"


def _check_transport(transport: str) -> None:
    if not transport or "." in transport:
        raise LocatorError(f"transport must be non-empty and contain no '.': {transport!r}")


@dataclass(frozen=True)
class PeerLocation:
    """A peer: designator (usually a key) + transport name + connection hints.

    Two locations name the same peer when designator and transport match; hints are
    only advice on how to reach it, so ``hash`` ignores them and ``same_peer`` compares
    without them.
    """

    designator: str
    transport: str
    hints: Mapping[str, str] | None = None
    #: The record this location was parsed from, re-emitted verbatim by ``to_record``:
    #: peers sign and compare locations as they sent them (e.g. hint keys as strings
    #: rather than symbols), so what we relay must be exactly what we received.
    source: Record | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.designator, str) or not self.designator:
            raise LocatorError("designator must be a non-empty string")
        if not isinstance(self.transport, str):
            raise LocatorError("transport must be a string")
        _check_transport(self.transport)
        if self.hints is not None:
            hints = dict(self.hints)
            for key, value in hints.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise LocatorError("hints map strings to strings")
            object.__setattr__(self, "hints", hints or None)

    def __hash__(self) -> int:
        return hash((self.designator, self.transport))

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the peer: (transport, designator)."""
        return (self.transport, self.designator)

    def same_peer(self, other: PeerLocation) -> bool:
        return self.key == other.key

    def hints_dict(self) -> dict[str, str]:
        return dict(self.hints) if self.hints else {}

    # -- Syrup -------------------------------------------------------------------

    def to_record(self) -> Record:
        if self.source is not None:
            return self.source
        hints: dict[Symbol, str] | bool = (
            {Symbol(k): v for k, v in self.hints.items()} if self.hints else False
        )
        return Record(PEER_LABEL, Symbol(self.transport), self.designator, hints)

    @classmethod
    def from_record(cls, value: Any) -> PeerLocation:
        if not isinstance(value, Record) or value.label not in (PEER_LABEL, LEGACY_PEER_LABEL):
            raise LocatorRecordError("expected an <ocapn-peer ...> record")
        if len(value.fields) != 3:
            raise LocatorRecordError("<ocapn-peer> takes three fields")
        first, second, raw_hints = value.fields
        if isinstance(first, Symbol) and isinstance(second, str):
            transport, designator = first.name, second
        elif isinstance(first, str) and isinstance(second, Symbol):
            designator, transport = first, second.name
        else:
            raise LocatorRecordError(
                "<ocapn-peer> needs a transport symbol and a designator string"
            )
        hints: dict[str, str] | None
        if raw_hints is False or raw_hints == []:
            hints = None
        elif isinstance(raw_hints, dict):
            hints = {}
            for k, v in raw_hints.items():
                name = k.name if isinstance(k, Symbol) else k
                if not isinstance(name, str) or not isinstance(v, str):
                    raise LocatorRecordError("<ocapn-peer> hints map symbols to strings")
                hints[name] = v
        else:
            raise LocatorRecordError("<ocapn-peer> hints must be a dictionary or false")
        try:
            return cls(designator, transport, hints, source=value)
        except LocatorRecordError:
            raise
        except LocatorError as exc:
            raise LocatorRecordError(exc.message) from exc

    # -- URI ---------------------------------------------------------------------

    def to_uri(self) -> str:
        return _authority_uri(self) + _query(self.hints)

    @classmethod
    def from_uri(cls, uri: str) -> PeerLocation:
        peer, path = _parse_uri(uri)
        if path:
            raise LocatorURIError(f"a peer URI has no path: {uri!r}")
        return peer

    def __str__(self) -> str:
        return self.to_uri()


@dataclass(frozen=True)
class SturdyRef:
    """A capability in data form: a peer and the swiss number of an object it exports."""

    peer: PeerLocation
    swiss_num: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.peer, PeerLocation):
            raise LocatorError("sturdyref peer must be a PeerLocation")
        if not isinstance(self.swiss_num, bytes):
            raise LocatorError("swiss number must be bytes")

    def to_record(self) -> Record:
        return Record(STURDYREF_LABEL, self.peer.to_record(), self.swiss_num)

    @classmethod
    def from_record(cls, value: Any) -> SturdyRef:
        if not isinstance(value, Record) or value.label != STURDYREF_LABEL:
            raise LocatorRecordError("expected an <ocapn-sturdyref ...> record")
        if len(value.fields) != 2:
            raise LocatorRecordError("<ocapn-sturdyref> takes two fields")
        raw_peer, swiss = value.fields
        peer = PeerLocation.from_record(raw_peer)
        if isinstance(swiss, str):
            swiss = swiss.encode("utf-8")
        if not isinstance(swiss, bytes):
            raise LocatorRecordError("<ocapn-sturdyref> swiss number must be bytes or a string")
        return cls(peer, swiss)

    def to_uri(self) -> str:
        swiss = base64.urlsafe_b64encode(self.swiss_num).rstrip(b"=").decode("ascii")
        return f"{_authority_uri(self.peer)}/s/{swiss}{_query(self.peer.hints)}"

    @classmethod
    def from_uri(cls, uri: str) -> SturdyRef:
        peer, path = _parse_uri(uri)
        if not path.startswith("/s/"):
            raise LocatorURIError(f"a sturdyref URI has the path /s/SWISS: {uri!r}")
        encoded = path[3:]
        if not encoded:
            raise LocatorURIError(f"a sturdyref URI needs a swiss number: {uri!r}")
        if not _BASE64URL.match(encoded) or len(encoded.rstrip("=")) % 4 == 1:
            raise LocatorURIError(f"swiss number is not base64url: {encoded!r}")
        unpadded = encoded.rstrip("=")
        try:
            swiss = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise LocatorURIError(f"swiss number is not base64url: {encoded!r}") from exc
        return cls(peer, swiss)

    def __str__(self) -> str:
        return self.to_uri()


def parse_uri(uri: str) -> PeerLocation | SturdyRef:
    """Either kind of locator from its URI."""
    _, path = _parse_uri(uri)
    return SturdyRef.from_uri(uri) if path else PeerLocation.from_uri(uri)


def _authority_uri(peer: PeerLocation) -> str:
    designator = urllib.parse.quote(peer.designator, safe=_URI_SAFE)
    transport = urllib.parse.quote(peer.transport, safe="-_~")
    return f"ocapn://{designator}.{transport}"


def _query(hints: Mapping[str, str] | None) -> str:
    if not hints:
        return ""
    pairs = (
        urllib.parse.quote(k, safe=_QUERY_SAFE) + "=" + urllib.parse.quote(v, safe=_QUERY_SAFE)
        for k, v in sorted(hints.items())
    )
    return "?" + "&".join(pairs)


def _unquote(text: str, what: str, uri: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise LocatorURIError(f"bad percent-encoding in {what} of {uri!r}")
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise LocatorURIError(f"{what} of {uri!r} is not UTF-8") from exc


def _parse_uri(uri: str) -> tuple[PeerLocation, str]:
    if not isinstance(uri, str):
        raise LocatorURIError("a locator URI must be a string")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() != "ocapn":
        raise LocatorURIError(f"not an ocapn:// URI: {uri!r}")
    if any(c.isspace() for c in uri) or "#" in rest:
        raise LocatorURIError(f"URI contains whitespace or a fragment: {uri!r}")
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    path = slash + path
    designator_raw, dot, transport_raw = authority.rpartition(".")
    if not dot or not designator_raw or not transport_raw:
        raise LocatorURIError(f"URI authority must be DESIGNATOR.TRANSPORT: {uri!r}")
    designator = _unquote(designator_raw, "designator", uri)
    transport = _unquote(transport_raw, "transport", uri)
    if "." in transport:
        raise LocatorURIError(f"transport may not contain '.': {uri!r}")
    hints: dict[str, str] | None = None
    if query:
        hints = {}
        for pair in query.split("&"):
            key_raw, eq, value_raw = pair.partition("=")
            if not eq or not key_raw:
                raise LocatorURIError(f"hints must be key=value pairs: {uri!r}")
            key = _unquote(key_raw.replace("+", " "), "hint", uri)
            if key in hints:
                raise LocatorURIError(f"hint {key!r} appears twice in {uri!r}")
            hints[key] = _unquote(value_raw.replace("+", " "), "hint", uri)
    try:
        return PeerLocation(designator, transport, hints), path
    except LocatorURIError:
        raise
    except LocatorError as exc:
        raise LocatorURIError(exc.message) from exc
