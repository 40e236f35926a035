"""Locators: Syrup records and ocapn:// URIs for peers and sturdyrefs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.ocapn.locator import (
    LocatorError,
    LocatorRecordError,
    LocatorURIError,
    PeerLocation,
    SturdyRef,
    parse_uri,
)

designators = st.text(min_size=1, max_size=30)
transports = st.text(
    alphabet=st.characters(blacklist_characters=".", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=20,
)
hint_maps = st.none() | st.dictionaries(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    max_size=4,
)
peers = st.builds(PeerLocation, designators, transports, hint_maps)


def test_spec_peer_uri_examples() -> None:
    peer = PeerLocation.from_uri("ocapn://abc123.tcp-testing-only?host=127.0.0.1&port=22045")
    assert peer == PeerLocation(
        "abc123", "tcp-testing-only", {"host": "127.0.0.1", "port": "22045"}
    )
    assert peer.to_uri() == "ocapn://abc123.tcp-testing-only?host=127.0.0.1&port=22045"
    bare = PeerLocation.from_uri("ocapn://b4ekbwqyd5jm.onion")
    assert bare.hints is None and bare.transport == "onion"
    assert bare.to_uri() == "ocapn://b4ekbwqyd5jm.onion"


def test_designator_may_contain_dots_last_dot_separates_transport() -> None:
    peer = PeerLocation.from_uri("ocapn://my.peer.name.tls")
    assert peer.designator == "my.peer.name" and peer.transport == "tls"
    assert peer.to_uri() == "ocapn://my.peer.name.tls"


def test_peer_record_wire_form_matches_deployed_implementations() -> None:
    peer = PeerLocation("abc", "tcp-testing-only", {"host": "127.0.0.1", "port": "22045"})
    record = peer.to_record()
    assert record == Record(
        Symbol("ocapn-peer"),
        Symbol("tcp-testing-only"),
        "abc",
        {Symbol("host"): "127.0.0.1", Symbol("port"): "22045"},
    )
    assert PeerLocation.from_record(decode(encode(record))) == peer
    assert PeerLocation("abc", "tls").to_record().fields[2] is False


def test_peer_record_variants_accepted() -> None:
    spec_order = Record(Symbol("ocapn-peer"), "abc", Symbol("tls"), False)
    assert PeerLocation.from_record(spec_order) == PeerLocation("abc", "tls")
    legacy = Record(Symbol("ocapn-node"), Symbol("tls"), "abc", {"host": "h"})
    assert PeerLocation.from_record(legacy) == PeerLocation("abc", "tls", {"host": "h"})
    empty_list_hints = Record(Symbol("ocapn-peer"), Symbol("tcp-testing-only"), "client", [])
    assert PeerLocation.from_record(empty_list_hints).hints is None


@pytest.mark.parametrize(
    "value",
    [
        "ocapn://x.tls",
        Record(Symbol("ocapn-peer"), Symbol("tls"), "abc"),
        Record(Symbol("ocapn-peer"), "abc", "tls", False),
        Record(Symbol("ocapn-peer"), Symbol("tls"), "abc", 5),
        Record(Symbol("ocapn-peer"), Symbol("tls"), "abc", {Symbol("port"): 22}),
        Record(Symbol("ocapn-peer"), Symbol("a.b"), "abc", False),
        Record(Symbol("other"), Symbol("tls"), "abc", False),
    ],
)
def test_bad_peer_records(value: object) -> None:
    with pytest.raises(LocatorRecordError) as info:
        PeerLocation.from_record(value)
    assert info.value.code == "ocapn.locator.record"


def test_sturdyref_record_and_uri() -> None:
    peer = PeerLocation("abc", "tcp-testing-only", {"host": "127.0.0.1", "port": "22045"})
    ref = SturdyRef(peer, b"JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ")
    record = ref.to_record()
    assert record == Record(Symbol("ocapn-sturdyref"), peer.to_record(), ref.swiss_num)
    assert SturdyRef.from_record(decode(encode(record))) == ref
    uri = ref.to_uri()
    assert uri == (
        "ocapn://abc.tcp-testing-only/s/SmFkUTArK1J6c0Q0TSs0MHVMeFRXVmFWcU0xMERjQko"
        "?host=127.0.0.1&port=22045"
    )
    assert SturdyRef.from_uri(uri) == ref
    assert parse_uri(uri) == ref
    assert parse_uri("ocapn://abc.tls") == PeerLocation("abc", "tls")
    # a string swiss number in a record is accepted as its UTF-8 bytes
    loose = Record(Symbol("ocapn-sturdyref"), peer.to_record(), "JadQ")
    assert SturdyRef.from_record(loose).swiss_num == b"JadQ"


def test_swiss_number_with_padding_accepted() -> None:
    ref = SturdyRef.from_uri("ocapn://abc.tls/s/YWI=")
    assert ref.swiss_num == b"ab"


def test_hints_are_percent_encoded() -> None:
    peer = PeerLocation("d e", "unix", {"path": "/tmp/a b&c=d?.sock", "x+y": "ü"})
    uri = peer.to_uri()
    assert " " not in uri and "&c" not in uri
    assert uri.startswith("ocapn://d%20e.unix?path=/tmp/a%20b%26c%3Dd?.sock")
    assert PeerLocation.from_uri(uri) == peer


@pytest.mark.parametrize(
    "uri",
    [
        "http://abc.tls",
        "ocapn:abc.tls",
        "ocapn://abctls",
        "ocapn://.tls",
        "ocapn://abc.",
        "ocapn://abc.tls/x",
        "ocapn://abc.tls/s/",
        "ocapn://abc.tls/s/a",
        "ocapn://abc.tls/s/a!b",
        "ocapn://abc.tls?host",
        "ocapn://abc.tls?host=a&host=b",
        "ocapn://abc.tls?=a",
        "ocapn://abc.tls#frag",
        "ocapn://ab c.tls",
        "ocapn://abc%zz.tls",
        "ocapn://abc%ff.tls",
        "ocapn://abc.t%2Els",
    ],
)
def test_bad_uris(uri: str) -> None:
    with pytest.raises(LocatorURIError) as info:
        if "/s" in uri:
            SturdyRef.from_uri(uri)
        else:
            PeerLocation.from_uri(uri)
    assert info.value.code == "ocapn.locator.uri"


def test_peer_uri_is_not_a_sturdyref() -> None:
    with pytest.raises(LocatorURIError):
        SturdyRef.from_uri("ocapn://abc.tls")
    with pytest.raises(LocatorURIError):
        PeerLocation.from_uri("ocapn://abc.tls/s/YWI")


def test_invalid_construction() -> None:
    with pytest.raises(LocatorError):
        PeerLocation("", "tls")
    with pytest.raises(LocatorError):
        PeerLocation("abc", "t.ls")
    with pytest.raises(LocatorError):
        SturdyRef(PeerLocation("abc", "tls"), "not-bytes")  # type: ignore[arg-type]


def test_equality_and_hash_ignore_hints_for_identity() -> None:
    a = PeerLocation("abc", "tls", {"host": "1"})
    b = PeerLocation("abc", "tls", {"host": "2"})
    assert a.same_peer(b) and hash(a) == hash(b)
    assert a != b
    assert PeerLocation("abc", "tls", {}) == PeerLocation("abc", "tls", None)


@given(peers)
def test_peer_round_trips(peer: PeerLocation) -> None:
    assert PeerLocation.from_uri(peer.to_uri()) == peer
    assert PeerLocation.from_record(decode(encode(peer.to_record()))) == peer


@given(peers, st.binary(min_size=1, max_size=64))
def test_sturdyref_round_trips(peer: PeerLocation, swiss: bytes) -> None:
    ref = SturdyRef(peer, swiss)
    assert SturdyRef.from_uri(ref.to_uri()) == ref
    assert SturdyRef.from_record(decode(encode(ref.to_record()))) == ref


def test_parsed_location_is_relayed_verbatim() -> None:
    # the conformance suite's peers send hint keys as strings, not symbols
    theirs = Record(
        Symbol("ocapn-peer"), Symbol("tcp-testing-only"), "abc", {"port": "1", "host": "h"}
    )
    peer = PeerLocation.from_record(theirs)
    assert peer.hints == {"host": "h", "port": "1"}
    assert encode(peer.to_record()) == encode(theirs)
    # equal to a location built by hand, which emits symbol keys as the spec says
    built = PeerLocation("abc", "tcp-testing-only", {"host": "h", "port": "1"})
    assert built == peer
    assert encode(built.to_record()) != encode(theirs)
    spec_order = Record(Symbol("ocapn-peer"), "abc", Symbol("tls"), False)
    assert PeerLocation.from_record(spec_order).to_record() == spec_order


def test_cli_parse_uri() -> None:
    import json

    from typer.testing import CliRunner

    from charter.cli.ocapn import app

    runner = CliRunner()
    uri = SturdyRef(PeerLocation("abc", "tls", {"host": "h", "port": "1"}), b"ab").to_uri()
    result = runner.invoke(app, ["parse-uri", uri])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "designator": "abc",
        "transport": "tls",
        "hints": {"host": "h", "port": "1"},
        "swiss_num": "YWI",
    }
    bad = runner.invoke(app, ["parse-uri", "ocapn://nodot"])
    assert isinstance(bad.exception, LocatorURIError)
