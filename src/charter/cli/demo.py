"""``charter demo``: the scripted walk-through behind ``make demo``.

The demo is a sequence of small steps sharing one context. Every step checks
what it shows (a refusal that does not happen fails the demo), so the demo is
also an end-to-end smoke test. Later layers append their steps to ``STEPS``.
"""

from __future__ import annotations

import asyncio
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from charter.cli.keys import mnemonic_panel
from charter.crypto.certs import load_certificate, self_signed_certificate, write_certificate
from charter.crypto.errors import PassphraseRequiredError, WrongPassphraseError
from charter.crypto.keyfile import load_ed25519_private_key, write_private_key
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.identity.attestation import (
    DEVICE,
    NODE,
    AttestationChain,
    RevocationRegistry,
    attest,
    verify_chain,
)
from charter.identity.errors import (
    AttestationError,
    AttestationPurposeError,
    AttestationRevokedError,
    AttestationRootError,
)
from charter.identity.root import ROOT_PATH, RootIdentity, device_path, node_path
from charter.ledger.engine import TxStatus
from charter.ledger.errors import LedgerError
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert
from charter.ledger.verify import verify_receipt
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings, SubmitTicket

_T = TypeVar("_T")


class DemoError(CharterError):
    """A demo step did not see what it set out to show."""

    code = "demo.step"


@dataclass
class DemoContext:
    """What the steps share: a scratch directory and what earlier steps made."""

    workdir: Path
    console: Console
    words: str = ""
    identity: RootIdentity | None = None
    device_key: Ed25519PrivateKey | None = None
    node_key: Ed25519PrivateKey | None = None
    chain_path: Path | None = None
    registry: RevocationRegistry = field(default_factory=RevocationRegistry)

    def need_identity(self) -> RootIdentity:
        return _need(self.identity, "root identity")

    def need_device(self) -> Ed25519PrivateKey:
        return _need(self.device_key, "device key")

    def need_node(self) -> Ed25519PrivateKey:
        return _need(self.node_key, "node key")

    def need_chain_path(self) -> Path:
        return _need(self.chain_path, "chain file")

    def ok(self, text: str) -> None:
        self.console.print(f"  [green]ok[/]       {text}")

    def info(self, text: str) -> None:
        self.console.print(f"  [dim]..[/]       {text}")

    def expect_refusal(
        self, what: str, error: type[CharterError], action: Callable[[], object]
    ) -> None:
        """Run ``action``; it must fail with ``error``, which is shown with its code."""
        try:
            action()
        except error as exc:
            self.console.print(
                f"  [yellow]refused[/]  {what}: [dim]\\[{exc.code}][/] {exc.message}"
            )
            return
        raise DemoError(f"{what} was accepted; it must be refused")


def _need(value: _T | None, what: str) -> _T:
    if value is None:
        raise DemoError(f"an earlier step should have produced the {what}")
    return value


def step_root_identity(ctx: DemoContext) -> None:
    identity, words = RootIdentity.generate()
    ctx.identity, ctx.words = identity, words
    ctx.console.print(mnemonic_panel(words))
    ctx.ok(f"root key at {ROOT_PATH}: {identity.root_key().public_key.designator}")


def step_recover(ctx: DemoContext) -> None:
    identity = ctx.need_identity()
    recovered = RootIdentity.from_mnemonic(ctx.words)
    if recovered.root_key().public_key != identity.root_key().public_key:
        raise DemoError("the words did not recover the same root key")
    ctx.ok("the 24 words alone recover the same root key")


def step_derive(ctx: DemoContext) -> None:
    identity = ctx.need_identity()
    ctx.device_key = identity.derive(device_path(0))
    ctx.node_key = identity.derive(node_path(0))
    for role, path, key in (
        ("root", ROOT_PATH, identity.root_key()),
        ("device", device_path(0), ctx.device_key),
        ("node", node_path(0), ctx.node_key),
    ):
        ctx.info(f"{role:<7} {path:<8} {key.public_key.designator}")
    ctx.ok("three independent Ed25519 keys from one seed (hardened derivation)")


def step_attest(ctx: DemoContext) -> None:
    identity = ctx.need_identity()
    device, node = ctx.need_device(), ctx.need_node()
    chain = attest(identity.root_key(), device.public_key, DEVICE, epoch=1).extend(
        device, node.public_key, NODE
    )
    ctx.chain_path = ctx.workdir / "node.chain"
    ctx.chain_path.write_bytes(chain.to_bytes())
    ctx.ok(f"root -> device -> node, epoch 1: {ctx.chain_path.name}, {len(chain.to_bytes())} bytes")
    ctx.info("each link signs canonical Syrup <charter-attestation root issuer subject ...>")


def step_verify(ctx: DemoContext) -> None:
    root = ctx.need_identity().root_key().public_key
    ctx.registry.raise_min_epoch(root, 1)
    chain = AttestationChain.load(ctx.need_chain_path().read_bytes())
    result = verify_chain(
        chain, revocations=ctx.registry, expected_root=root, expected_purpose=NODE
    )
    if result.leaf != ctx.need_node().public_key:
        raise DemoError("the verified leaf is not the node key")
    ctx.ok(f"root  {result.root.designator}")
    ctx.ok(f"leaf  {result.leaf.designator}")
    ctx.ok(f"purposes {' -> '.join(('root', *result.purposes))}, epoch {result.epoch}")


def step_tampered(ctx: DemoContext) -> None:
    data = bytearray(ctx.need_chain_path().read_bytes())
    data[len(data) // 2] ^= 0x01
    ctx.expect_refusal(
        "chain with one flipped bit",
        AttestationError,
        lambda: verify_chain(AttestationChain.load(bytes(data))),
    )
    chain = AttestationChain.load(ctx.need_chain_path().read_bytes())
    other_root = Ed25519PrivateKey.generate().public_key
    ctx.expect_refusal(
        "chain checked against another root",
        AttestationRootError,
        lambda: verify_chain(chain, expected_root=other_root),
    )
    ctx.expect_refusal(
        "node key presented as a device",
        AttestationPurposeError,
        lambda: verify_chain(chain, expected_purpose=DEVICE),
    )


def step_revoke(ctx: DemoContext) -> None:
    identity = ctx.need_identity()
    root = identity.root_key().public_key
    old = AttestationChain.load(ctx.need_chain_path().read_bytes())
    ctx.registry.raise_min_epoch(root, 2)
    ctx.info("the root moves to epoch 2 (say, the device was lost)")
    ctx.expect_refusal(
        "epoch-1 chain",
        AttestationRevokedError,
        lambda: verify_chain(old, revocations=ctx.registry),
    )
    fresh = attest(identity.root_key(), ctx.need_node().public_key, NODE, epoch=2)
    result = verify_chain(fresh, revocations=ctx.registry, expected_root=root)
    ctx.ok(f"re-attested directly by the root at epoch {result.epoch}: accepted")


def step_key_file(ctx: DemoContext) -> None:
    node = ctx.need_node()
    path = ctx.workdir / "node.key"
    passphrase = b"demo passphrase, use a better one"
    write_private_key(path, node, passphrase=passphrase)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != 0o600:
        raise DemoError(f"key file has mode {mode:04o}, not 0600")
    ctx.ok(f"{path.name}: encrypted PKCS#8 PEM, mode {mode:04o}")
    loaded = load_ed25519_private_key(path, passphrase=passphrase)
    if loaded.public_key != node.public_key:
        raise DemoError("the reloaded key differs")
    ctx.ok("reloaded with the passphrase: same key")
    ctx.expect_refusal(
        "wrong passphrase",
        WrongPassphraseError,
        lambda: load_ed25519_private_key(path, passphrase=b"guess"),
    )
    ctx.expect_refusal(
        "no passphrase", PassphraseRequiredError, lambda: load_ed25519_private_key(path)
    )


def step_certificate(ctx: DemoContext) -> None:
    node = ctx.need_node()
    path = write_certificate(ctx.workdir / "node.crt", self_signed_certificate(node))
    cert = load_certificate(path)
    cert.verify_self_signed()
    if not cert.matches(node.public_key):
        raise DemoError("the certificate does not carry the node key")
    ctx.ok(f"{path.name}: CN={cert.common_name}, valid until {cert.not_after:%Y-%m-%d}")
    ctx.ok("its public key is the node key (what TLS peers will pin)")


NETWORK_SECONDS = 25.0
"""The network act's bound: it fails with a typed error rather than hang."""


def step_network(ctx: DemoContext) -> None:
    try:
        asyncio.run(_network_act(ctx))
    except TimeoutError:
        raise DemoError(f"the network act did not finish within {NETWORK_SECONDS:g} s") from None


async def _network_act(ctx: DemoContext) -> None:
    ctx.info("at this stage the three members run in this one process: each has")
    ctx.info("its own keys, OCapN runtime and Raft log, and they talk only over TLS")
    ctx.info("on loopback. Separate node processes come with `charter node run`")
    ctx.info("and `charter stack up`.")
    keys: dict[int, Ed25519PrivateKey] = {}
    for nid in (1, 2, 3):
        identity, _ = RootIdentity.generate()  # each member's own fresh 24 words
        keys[nid] = identity.derive(node_path(0))
    settings = LedgerSettings(signature_policy=SignaturePolicy(every_tx=100, every_ms=100))
    async with asyncio.timeout(NETWORK_SECONDS):
        async with LocalLedgerNetwork("tls", settings=settings, node_keys=keys) as net:
            for m in net.members.values():
                loc = m.runtime.location()
                hints = loc.hints_dict()
                ctx.info(
                    f"{m.name} at {hints.get('host')}:{hints.get('port')}, "
                    f"pinned key {loc.designator[:16]}..."
                )
            leader = await net.elect()
            term = net.service(leader).summary().term
            ctx.ok(f"leader elected: {net.members[leader].name} (term {term})")

            tickets = await _write_from_each(net, "hello")
            for nid, ticket in tickets.items():
                via = "" if nid == leader else " (forwarded to the leader)"
                ctx.ok(
                    f"write from {net.members[nid].name}: tx {ticket.tx_id} {ticket.status}{via}"
                )

            follower = next(n for n in net.ids if n != leader)
            tx_id = tickets[follower].tx_id
            receipt = net.service(follower).receipt(tx_id, "cose")
            path = ctx.workdir / "receipt.cose"
            path.write_bytes(receipt)
            verified = verify_receipt(path.read_bytes(), net.trusted())
            if verified.signer != _ledger_node_id(net, leader):
                raise DemoError("the receipt was not signed by the leader's ledger key")
            ctx.ok(
                f"receipt for {tx_id}: {len(receipt)}-byte COSE_Sign1, verified offline "
                f"against the members' certificates (signer {verified.signer[:12]}...)"
            )
            damaged = bytearray(receipt)
            damaged[len(damaged) - 3] ^= 0x01
            ctx.expect_refusal(
                "receipt with one flipped bit",
                LedgerError,
                lambda: verify_receipt(bytes(damaged), net.trusted()),
            )

            await net.stop(leader)
            ctx.info(f"{net.members[leader].name} (the leader) stopped")
            new_leader = await net.elect()
            term = net.service(new_leader).summary().term
            ctx.ok(f"new leader elected: {net.members[new_leader].name} (term {term})")
            more = await _write_from_each(net, "again")
            for nid, ticket in more.items():
                ctx.ok(f"write from {net.members[nid].name}: tx {ticket.tx_id} {ticket.status}")
            last = next(iter(more.values())).tx_id
            signed = verify_receipt(net.service(new_leader).receipt(last), net.trusted())
            if signed.signer != _ledger_node_id(net, new_leader):
                raise DemoError("the new leader did not sign the new writes")
            ctx.ok(f"the new leader signed them; {last}'s JSON receipt verifies")


async def _write_from_each(net: LocalLedgerNetwork, tag: str) -> dict[int, SubmitTicket]:
    live = net.live()
    tickets = await asyncio.gather(
        *(
            net.service(n).submit(
                [("greetings", f"{tag}-{n}", f"{tag} from member {n}".encode())],
                wait="committed",
            )
            for n in live
        )
    )
    for ticket in tickets:
        if ticket.status is not TxStatus.COMMITTED:
            raise DemoError(f"tx {ticket.tx_id} is {ticket.status}: {ticket.reason}")
    return dict(zip(live, tickets, strict=True))


def _ledger_node_id(net: LocalLedgerNetwork, nid: int) -> str:
    return NodeCert.from_x509(net.members[nid].ledger_cert.x509).node_id


Step = tuple[str, Callable[[DemoContext], None]]

STEPS: list[Step] = [
    ("Create a root identity from a fresh 24-word mnemonic", step_root_identity),
    ("Recover it from the words", step_recover),
    ("Derive device and node keys at SLIP-10 paths", step_derive),
    ("Attest the node key: root -> device -> node", step_attest),
    ("Verify the chain", step_verify),
    ("Tampered and misused chains are refused", step_tampered),
    ("Revocation by epoch", step_revoke),
    ("Passphrase-protected key file", step_key_file),
    ("Self-signed certificate for the node key", step_certificate),
    ("A three-member network", step_network),
]


def run_demo(console: Console, workdir: Path, steps: list[Step] | None = None) -> DemoContext:
    ctx = DemoContext(workdir=workdir, console=console)
    chosen = STEPS if steps is None else steps
    for number, (title, step) in enumerate(chosen, start=1):
        console.rule(f"[bold]{number}. {title}", align="left")
        step(ctx)
    console.rule("[bold green]demo complete", align="left")
    return ctx


def demo() -> None:
    """Run the scripted scenario in a fresh temporary directory, printing what happens."""
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory(prefix="charter-demo-") as tmp:
        console.print(f"[dim]working in {tmp} (removed afterwards)[/]")
        run_demo(console, Path(tmp))
