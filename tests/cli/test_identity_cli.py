"""`charter identity attest` and `verify`, through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.crypto import (
    Ed25519PrivateKey,
    P256PrivateKey,
    write_private_key,
    write_public_key,
)
from charter.identity import AttestationChain, verify_chain

from ..conftest import CliRunner


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name in ("root", "device", "node"):
        key = Ed25519PrivateKey.generate()
        paths[name] = write_private_key(tmp_path / f"{name}.key", key)
        paths[f"{name}.pub"] = write_public_key(tmp_path / f"{name}.pub", key.public_key)
    return paths


def pub_hex(path: Path) -> str:
    from charter.crypto import load_public_key

    return load_public_key(path).hex()


def test_attest_and_verify(cli: CliRunner, keys: dict[str, Path], tmp_path: Path) -> None:
    chain = tmp_path / "node.chain"
    result = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--epoch", "3", "--out", str(chain),
    )  # fmt: skip
    assert result.code == 0, result.err
    loaded = AttestationChain.load(chain.read_bytes())
    assert verify_chain(loaded).epoch == 3
    shown = cli("identity", "verify", str(chain), "--min-epoch", "3", "--purpose", "node")
    assert shown.code == 0, shown.err
    assert pub_hex(keys["root.pub"]) in shown.out
    assert pub_hex(keys["node.pub"]) in shown.out
    assert "root -> node" in shown.out
    assert "epoch" in shown.out and "3" in shown.out


def test_attest_to_stdout_as_text_with_hex_subject(
    cli: CliRunner, keys: dict[str, Path], tmp_path: Path
) -> None:
    result = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", pub_hex(keys["node.pub"]),
        "--purpose", "member", "--epoch", "0",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out.startswith("-----BEGIN CHARTER ATTESTATION CHAIN-----")
    text_file = tmp_path / "chain.txt"
    text_file.write_text(result.out)
    shown = cli("identity", "verify", str(text_file), "--root", str(keys["root.pub"]))
    assert shown.code == 0, shown.err
    assert "root -> member" in shown.out


def test_extend_with_parent(cli: CliRunner, keys: dict[str, Path], tmp_path: Path) -> None:
    first, second = tmp_path / "device.chain", tmp_path / "node.chain"
    assert cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(keys["device"]),
        "--purpose", "device", "--epoch", "7", "--out", str(first),
    ).code == 0  # fmt: skip
    result = cli(
        "identity", "attest", "--root", str(keys["device"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--parent", str(first), "--out", str(second), "--text",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "2 links" in result.out
    shown = cli("identity", "verify", str(second), "--purpose", "node", "--min-epoch", "7")
    assert shown.code == 0, shown.err
    assert "root -> device -> node" in shown.out
    # Epoch given with --parent must agree with it; only the leaf may extend.
    line = cli(
        "identity", "attest", "--root", str(keys["device"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--parent", str(first), "--epoch", "8",
    ).error_line()  # fmt: skip
    assert "[cli.usage]" in line
    line = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--parent", str(first),
    ).error_line()  # fmt: skip
    assert "[identity.attestation.link]" in line
    line = cli(
        "identity", "attest", "--root", str(keys["node"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--parent", str(second),
    ).error_line()  # fmt: skip
    assert "[identity.attestation.purpose]" in line


@pytest.fixture
def chain_file(cli: CliRunner, keys: dict[str, Path], tmp_path: Path) -> Path:
    chain = tmp_path / "n.chain"
    assert cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--epoch", "2", "--out", str(chain),
    ).code == 0  # fmt: skip
    return chain


def test_verify_refusals(
    cli: CliRunner, keys: dict[str, Path], chain_file: Path, tmp_path: Path
) -> None:
    line = cli("identity", "verify", str(chain_file), "--min-epoch", "3").error_line()
    assert "[identity.attestation.revoked]" in line
    line = cli(
        "identity", "verify", str(chain_file), "--root", str(keys["device.pub"])
    ).error_line()
    assert "[identity.attestation.root]" in line
    line = cli("identity", "verify", str(chain_file), "--purpose", "device").error_line()
    assert "[identity.attestation.purpose]" in line
    data = bytearray(chain_file.read_bytes())
    data[-20] ^= 0x04
    tampered = tmp_path / "tampered.chain"
    tampered.write_bytes(bytes(data))
    line = cli("identity", "verify", str(tampered)).error_line()
    assert "[identity.attestation." in line
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00junk")
    assert "[identity.attestation.format]" in cli("identity", "verify", str(junk)).error_line()
    line = cli("identity", "verify", str(tmp_path / "absent")).error_line()
    assert "[crypto.keyfile.missing]" in line


def test_attest_errors(cli: CliRunner, keys: dict[str, Path], tmp_path: Path) -> None:
    base = ("identity", "attest", "--root", str(keys["root"]), "--sub", str(keys["node.pub"]))
    assert "[cli.usage]" in cli(*base, "--purpose", "node").error_line()
    line = cli(*base, "--purpose", "admin", "--epoch", "1").error_line()
    assert "[identity.attestation.purpose]" in line
    p256 = P256PrivateKey.generate()
    p256_key = write_private_key(tmp_path / "p.key", p256)
    p256_pub = write_public_key(tmp_path / "p.pub", p256.public_key)
    line = cli(
        "identity", "attest", "--root", str(p256_key), "--sub", str(keys["node.pub"]),
        "--purpose", "node", "--epoch", "1",
    ).error_line()  # fmt: skip
    assert "[crypto.key.wrong_type]" in line
    line = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(p256_pub),
        "--purpose", "node", "--epoch", "1",
    ).error_line()  # fmt: skip
    assert "[crypto.key.wrong_type]" in line
    enc = write_private_key(tmp_path / "e.key", Ed25519PrivateKey.generate(), passphrase=b"pw")
    line = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", str(enc),
        "--purpose", "node", "--epoch", "1",
    ).error_line()  # fmt: skip
    assert "[crypto.keyfile.passphrase_required]" in line
    line = cli(
        "identity", "attest", "--root", str(keys["root"]), "--sub", "abcd",
        "--purpose", "node", "--epoch", "1",
    ).error_line()  # fmt: skip
    assert "[crypto.keyfile.missing]" in line
    out = tmp_path / "exists.chain"
    out.write_bytes(b"x")
    line = cli(*base, "--purpose", "node", "--epoch", "1", "--out", str(out)).error_line()
    assert "[crypto.keyfile.exists]" in line
    assert out.read_bytes() == b"x"
