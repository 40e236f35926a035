"""Attestation chains: what verifies, and every way a chain is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.crypto import Ed25519PrivateKey
from charter.identity import (
    DEVICE,
    MEMBER,
    NODE,
    Attestation,
    AttestationChain,
    AttestationError,
    AttestationExpiredError,
    AttestationFormatError,
    AttestationLinkError,
    AttestationPurposeError,
    AttestationRevokedError,
    AttestationRootError,
    AttestationSignatureError,
    RevocationRegistry,
    SignedAttestation,
    attest,
    verify_chain,
)
from charter.identity.attestation import (
    ATTESTATION_LABEL,
    BACKDATE_SECONDS,
    CHAIN_LABEL,
    MAX_CHAIN_LENGTH,
    SIGNED_LABEL,
)

NOW = 1_800_000_000
DAY = 86_400


@pytest.fixture(scope="module")
def keys() -> dict[str, Ed25519PrivateKey]:
    return {name: Ed25519PrivateKey.generate() for name in ("root", "device", "node", "other")}


@pytest.fixture(scope="module")
def chain(keys: dict[str, Ed25519PrivateKey]) -> AttestationChain:
    return attest(keys["root"], keys["device"].public_key, DEVICE, 5, now=NOW).extend(
        keys["device"], keys["node"].public_key, NODE, now=NOW
    )


def test_two_link_chain_verifies(
    keys: dict[str, Ed25519PrivateKey], chain: AttestationChain
) -> None:
    result = verify_chain(
        chain,
        now=NOW,
        expected_root=keys["root"].public_key,
        expected_purpose=NODE,
        revocations=RevocationRegistry({keys["root"].public_key: 5}),
    )
    assert result.root == keys["root"].public_key
    assert result.leaf == keys["node"].public_key
    assert result.purposes == (DEVICE, NODE)
    assert result.leaf_purpose == NODE
    assert result.epoch == 5
    assert result.not_before == NOW - BACKDATE_SECONDS
    assert chain.root == result.root and chain.leaf == result.leaf and len(chain) == 2


def test_single_link_chain(keys: dict[str, Ed25519PrivateKey]) -> None:
    single = attest(keys["root"], keys["node"].public_key, NODE, 0, now=NOW)
    result = verify_chain(single, now=NOW)
    assert result.purposes == (NODE,)
    assert result.leaf == keys["node"].public_key


def test_payload_is_the_canonical_record(chain: AttestationChain) -> None:
    link = chain.links[0]
    statement = link.attestation
    expected = Record(
        ATTESTATION_LABEL,
        statement.root.raw,
        statement.issuer.raw,
        statement.subject.raw,
        Symbol(DEVICE),
        5,
        NOW - BACKDATE_SECONDS,
        statement.not_after,
    )
    assert link.payload == encode(expected)
    assert statement.issuer.is_valid(link.signature, link.payload)


@pytest.mark.parametrize("form", ["bytes", "text"])
def test_serialisation_round_trip(chain: AttestationChain, form: str) -> None:
    data = chain.to_bytes() if form == "bytes" else chain.to_text().encode()
    loaded = AttestationChain.load(data)
    assert loaded == chain
    assert loaded.to_bytes() == chain.to_bytes()
    assert verify_chain(loaded, now=NOW).leaf == chain.leaf
    outer = decode(chain.to_bytes())
    assert isinstance(outer, Record) and outer.label == CHAIN_LABEL


def test_every_single_byte_flip_is_refused(chain: AttestationChain) -> None:
    data = chain.to_bytes()
    for position in range(len(data)):
        for mask in (0x01, 0x80):
            tampered = bytearray(data)
            tampered[position] ^= mask
            with pytest.raises(AttestationError):
                verify_chain(AttestationChain.load(bytes(tampered)), now=NOW)


def test_text_form_tampering_is_refused(chain: AttestationChain) -> None:
    text = chain.to_text()
    lines = text.splitlines()
    body = list(lines[3])
    body[10] = "A" if body[10] != "A" else "B"
    lines[3] = "".join(body)
    with pytest.raises(AttestationError):
        verify_chain(AttestationChain.load("\n".join(lines).encode()), now=NOW)
    with pytest.raises(AttestationFormatError):
        AttestationChain.from_text(text.replace("-----END", "-----FIN"))
    with pytest.raises(AttestationFormatError):
        AttestationChain.from_text(text.replace(lines[2], lines[2][:-1] + "*"))


def test_resigned_by_wrong_key_is_refused(
    keys: dict[str, Ed25519PrivateKey], chain: AttestationChain
) -> None:
    link = chain.links[1]
    forged = SignedAttestation(link.payload, keys["other"].sign(link.payload), link.attestation)
    with pytest.raises(AttestationSignatureError) as info:
        verify_chain(AttestationChain((chain.links[0], forged)), now=NOW)
    assert info.value.code == "identity.attestation.signature"


def test_wrong_root(keys: dict[str, Ed25519PrivateKey], chain: AttestationChain) -> None:
    with pytest.raises(AttestationRootError) as info:
        verify_chain(chain, now=NOW, expected_root=keys["other"].public_key)
    assert info.value.code == "identity.attestation.root"


def test_wrong_leaf_purpose(chain: AttestationChain) -> None:
    with pytest.raises(AttestationPurposeError) as info:
        verify_chain(chain, now=NOW, expected_purpose=MEMBER)
    assert info.value.code == "identity.attestation.purpose"


@pytest.mark.parametrize(
    ("first", "second"),
    [(NODE, NODE), (NODE, DEVICE), (DEVICE, DEVICE), (DEVICE, MEMBER), (MEMBER, MEMBER)],
)
def test_purpose_constraints_when_issuing(
    keys: dict[str, Ed25519PrivateKey], first: str, second: str
) -> None:
    start = attest(keys["root"], keys["device"].public_key, first, 1, now=NOW)
    with pytest.raises(AttestationPurposeError):
        start.extend(keys["device"], keys["node"].public_key, second, now=NOW)


@pytest.mark.parametrize(("first", "second"), [(MEMBER, DEVICE), (MEMBER, NODE), (DEVICE, NODE)])
def test_allowed_purposes(keys: dict[str, Ed25519PrivateKey], first: str, second: str) -> None:
    chain = attest(keys["root"], keys["device"].public_key, first, 1, now=NOW).extend(
        keys["device"], keys["node"].public_key, second, now=NOW
    )
    assert verify_chain(chain, now=NOW).purposes == (first, second)


def test_purpose_constraints_when_verifying(keys: dict[str, Ed25519PrivateKey]) -> None:
    """A node key that signs a link anyway (bypassing extend) is refused by the verifier."""
    base = attest(keys["root"], keys["device"].public_key, NODE, 1, now=NOW)
    statement = Attestation(
        root=keys["root"].public_key,
        issuer=keys["device"].public_key,
        subject=keys["node"].public_key,
        purpose=NODE,
        epoch=1,
        not_before=NOW - 10,
        not_after=NOW + DAY,
    )
    rogue = SignedAttestation.sign(keys["device"], statement)
    with pytest.raises(AttestationPurposeError):
        verify_chain(AttestationChain((*base.links, rogue)), now=NOW)


def test_unknown_purpose(keys: dict[str, Ed25519PrivateKey]) -> None:
    with pytest.raises(AttestationPurposeError):
        attest(keys["root"], keys["node"].public_key, "admin", 1, now=NOW)


def test_broken_linkage_is_refused(keys: dict[str, Ed25519PrivateKey]) -> None:
    first = attest(keys["root"], keys["device"].public_key, DEVICE, 1, now=NOW)
    # A second link signed by a key that is not the first link's subject.
    stray = Attestation(
        root=keys["root"].public_key,
        issuer=keys["other"].public_key,
        subject=keys["node"].public_key,
        purpose=NODE,
        epoch=1,
        not_before=NOW - 10,
        not_after=NOW + DAY,
    )
    chain = AttestationChain((*first.links, SignedAttestation.sign(keys["other"], stray)))
    with pytest.raises(AttestationLinkError) as info:
        verify_chain(chain, now=NOW)
    assert info.value.code == "identity.attestation.link"


def test_splicing_under_another_root_or_epoch_is_refused(
    keys: dict[str, Ed25519PrivateKey],
) -> None:
    first = attest(keys["root"], keys["device"].public_key, DEVICE, 1, now=NOW)
    for root, epoch in ((keys["other"].public_key, 1), (keys["root"].public_key, 2)):
        statement = Attestation(
            root=root,
            issuer=keys["device"].public_key,
            subject=keys["node"].public_key,
            purpose=NODE,
            epoch=epoch,
            not_before=NOW - 10,
            not_after=NOW + DAY,
        )
        chain = AttestationChain((*first.links, SignedAttestation.sign(keys["device"], statement)))
        with pytest.raises(AttestationLinkError):
            verify_chain(chain, now=NOW)


def test_first_link_must_be_self_issued_by_root(keys: dict[str, Ed25519PrivateKey]) -> None:
    statement = Attestation(
        root=keys["root"].public_key,
        issuer=keys["other"].public_key,
        subject=keys["node"].public_key,
        purpose=NODE,
        epoch=1,
        not_before=NOW - 10,
        not_after=NOW + DAY,
    )
    with pytest.raises(AttestationLinkError):
        verify_chain(AttestationChain((SignedAttestation.sign(keys["other"], statement),)), now=NOW)


def test_only_the_leaf_may_extend(
    keys: dict[str, Ed25519PrivateKey], chain: AttestationChain
) -> None:
    with pytest.raises(AttestationLinkError):
        chain.extend(keys["device"], keys["other"].public_key, NODE, now=NOW)
    statement = chain.links[0].attestation
    with pytest.raises(AttestationLinkError):
        SignedAttestation.sign(keys["other"], statement)


def test_validity_window(keys: dict[str, Ed25519PrivateKey]) -> None:
    chain = attest(
        keys["root"], keys["node"].public_key, NODE, 1, now=NOW, validity=dt.timedelta(days=1)
    )
    verify_chain(chain, now=NOW + DAY - 1)
    with pytest.raises(AttestationExpiredError) as info:
        verify_chain(chain, now=NOW + DAY)
    assert info.value.code == "identity.attestation.validity"
    with pytest.raises(AttestationExpiredError):
        verify_chain(chain, now=NOW - BACKDATE_SECONDS - 1)


def test_child_never_outlives_parent(keys: dict[str, Ed25519PrivateKey]) -> None:
    parent = attest(
        keys["root"], keys["device"].public_key, DEVICE, 1, now=NOW, validity=dt.timedelta(days=1)
    )
    chain = parent.extend(
        keys["device"], keys["node"].public_key, NODE, now=NOW, validity=dt.timedelta(days=30)
    )
    assert chain.links[1].attestation.not_after == chain.links[0].attestation.not_after
    assert verify_chain(chain, now=NOW).not_after == NOW + DAY


def test_revocation_by_epoch(keys: dict[str, Ed25519PrivateKey]) -> None:
    root = keys["root"].public_key
    old = attest(keys["root"], keys["node"].public_key, NODE, 1, now=NOW)
    new = attest(keys["root"], keys["node"].public_key, NODE, 2, now=NOW)
    registry = RevocationRegistry()
    assert registry.min_epoch(root) == 0
    verify_chain(old, now=NOW, revocations=registry)
    registry.raise_min_epoch(root, 2)
    with pytest.raises(AttestationRevokedError) as info:
        verify_chain(old, now=NOW, revocations=registry)
    assert info.value.code == "identity.attestation.revoked"
    assert verify_chain(new, now=NOW, revocations=registry).epoch == 2
    # Other roots are unaffected; minimums never go back.
    other = attest(keys["other"], keys["node"].public_key, NODE, 0, now=NOW)
    verify_chain(other, now=NOW, revocations=registry)
    with pytest.raises(AttestationRevokedError):
        registry.raise_min_epoch(root, 1)
    assert len(registry) == 1


def test_bad_epochs_and_windows(keys: dict[str, Ed25519PrivateKey]) -> None:
    with pytest.raises(AttestationFormatError):
        attest(keys["root"], keys["node"].public_key, NODE, -1, now=NOW)
    with pytest.raises(AttestationFormatError):
        attest(keys["root"], keys["node"].public_key, NODE, 2**63, now=NOW)
    with pytest.raises(AttestationFormatError):
        attest(keys["root"], keys["node"].public_key, NODE, 1, validity=dt.timedelta(0))
    with pytest.raises(AttestationFormatError):
        RevocationRegistry().raise_min_epoch(keys["root"].public_key, -1)


def _chain_bytes(*links: Record) -> bytes:
    return encode(Record(CHAIN_LABEL, list(links)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not syrup",
        encode(Record(Symbol("something-else"), [])),
        encode(Record(CHAIN_LABEL)),
        encode(Record(CHAIN_LABEL, "x")),
        _chain_bytes(),
        _chain_bytes(Record(SIGNED_LABEL, b"p")),
        _chain_bytes(Record(SIGNED_LABEL, "p", b"s")),
        _chain_bytes(Record(SIGNED_LABEL, encode(42), b"s" * 64)),
        _chain_bytes(Record(SIGNED_LABEL, encode(Record(ATTESTATION_LABEL, 1)), b"s" * 64)),
        _chain_bytes(
            Record(
                SIGNED_LABEL,
                encode(Record(ATTESTATION_LABEL, b"r" * 32, b"i" * 32, b"s" * 32, "node", 1, 0, 9)),
                b"s" * 64,
            )
        ),
        _chain_bytes(
            Record(
                SIGNED_LABEL,
                encode(
                    Record(
                        ATTESTATION_LABEL, b"r" * 31, b"i" * 32, b"s" * 32, Symbol("node"), 1, 0, 9
                    )
                ),
                b"s" * 64,
            )
        ),
        _chain_bytes(
            Record(
                SIGNED_LABEL,
                encode(
                    Record(
                        ATTESTATION_LABEL,
                        b"r" * 32,
                        b"i" * 32,
                        b"s" * 32,
                        Symbol("node"),
                        True,
                        0,
                        9,
                    )
                ),
                b"s" * 64,
            )
        ),
        _chain_bytes(
            Record(
                SIGNED_LABEL,
                encode(
                    Record(
                        ATTESTATION_LABEL, b"r" * 32, b"i" * 32, b"s" * 32, Symbol("node"), 1, 9, 9
                    )
                ),
                b"s" * 64,
            )
        ),
        _chain_bytes(
            Record(
                SIGNED_LABEL,
                encode(
                    Record(ATTESTATION_LABEL, "r", b"i" * 32, b"s" * 32, Symbol("node"), 1, 0, 9)
                ),
                b"s" * 64,
            )
        ),
    ],
)
def test_malformed_chains(data: bytes) -> None:
    with pytest.raises(AttestationError):
        AttestationChain.load(data)


def test_chain_length_limit(keys: dict[str, Ed25519PrivateKey], chain: AttestationChain) -> None:
    with pytest.raises(AttestationFormatError):
        AttestationChain(())
    with pytest.raises(AttestationFormatError):
        AttestationChain(chain.links[:1] * (MAX_CHAIN_LENGTH + 1))


def test_short_signature(chain: AttestationChain) -> None:
    link = chain.links[0]
    short = SignedAttestation(link.payload, link.signature[:-1], link.attestation)
    with pytest.raises(AttestationSignatureError):
        verify_chain(AttestationChain((short,)), now=NOW)
