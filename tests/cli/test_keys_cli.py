"""`charter keys`: files it writes, what it shows, and its one-line errors."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from charter.crypto import (
    Ed25519PrivateKey,
    P256PrivateKey,
    load_certificate,
    load_private_key,
    load_public_key,
    write_private_key,
)
from charter.identity import ROOT_PATH, RootIdentity, derive_ed25519, mnemonic_to_seed

from ..conftest import CliRunner

WORDS = " ".join(["abandon"] * 23 + ["art"])


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_ed25519_writes_key_pub_and_cert(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("keys", "new", "--out", str(tmp_path))
    assert result.code == 0, result.err
    key = load_private_key(tmp_path / "key.key")
    assert mode_of(tmp_path / "key.key") == 0o600
    assert load_public_key(tmp_path / "key.pub") == key.public_key
    assert load_certificate(tmp_path / "key.crt").matches(key.public_key)
    assert key.public_key.hex() in result.out
    assert "unencrypted" in result.out


def test_new_p256(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("keys", "new", "--type", "p256", "--name", "ledger", "--out", str(tmp_path))
    assert result.code == 0, result.err
    key = load_private_key(tmp_path / "ledger.key")
    assert isinstance(key, P256PrivateKey)
    cert = load_certificate(tmp_path / "ledger.crt")
    cert.verify_self_signed()
    assert cert.matches(key.public_key)


def test_new_mnemonic_prints_24_words_that_recover_the_key(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("keys", "new", "--mnemonic", "--out", str(tmp_path))
    assert result.code == 0, result.err
    numbered = dict(
        (int(n), w) for n, w in re.findall(r"(?<![\w.])(\d{1,2})\. ([a-z]+)", result.out)
    )
    assert sorted(numbered) == list(range(1, 25))
    words = " ".join(numbered[i] for i in range(1, 25))
    key = load_private_key(tmp_path / "root.key")
    assert RootIdentity.from_mnemonic(words).root_key().public_key == key.public_key
    assert "write them down" in result.out
    assert ROOT_PATH in result.out
    # The words are shown, never written to disk.
    for path in tmp_path.iterdir():
        assert words.split()[0] + " " + words.split()[1] not in path.read_text()


def test_new_with_passphrase_then_show(cli: CliRunner, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("hunter2 hunter2\n")
    out = tmp_path / "keys"
    out.mkdir()
    assert cli("keys", "new", "--out", str(out), "--passphrase-file", str(pw)).code == 0
    key_file = out / "key.key"
    assert b"ENCRYPTED" in key_file.read_bytes()
    line = cli("keys", "show", str(key_file)).error_line()
    assert "[crypto.keyfile.passphrase_required]" in line
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    line = cli("keys", "show", str(key_file), "--passphrase-file", str(wrong)).error_line()
    assert "[crypto.keyfile.passphrase_wrong]" in line
    shown = cli("keys", "show", str(key_file), "--passphrase-file", str(pw))
    assert shown.code == 0, shown.err
    pub = load_public_key(out / "key.pub")
    assert pub.hex() in shown.out
    assert pub.fingerprint() in shown.out.replace("\n", "").replace(" ", "")


def test_show_public_key_and_certificate(cli: CliRunner, tmp_path: Path) -> None:
    assert cli("keys", "new", "--out", str(tmp_path)).code == 0
    pub = load_public_key(tmp_path / "key.pub")
    shown = cli("keys", "show", str(tmp_path / "key.pub"))
    assert shown.code == 0 and pub.hex() in shown.out and "ed25519" in shown.out
    shown = cli("keys", "show", str(tmp_path / "key.crt"))
    assert shown.code == 0
    assert pub.hex() in shown.out
    assert "subject CN" in shown.out and "signature valid" in shown.out


def test_refuses_to_overwrite_unless_forced(cli: CliRunner, tmp_path: Path) -> None:
    assert cli("keys", "new", "--out", str(tmp_path)).code == 0
    before = (tmp_path / "key.key").read_bytes()
    assert "[cli.usage]" in cli("keys", "new", "--out", str(tmp_path)).error_line()
    assert (tmp_path / "key.key").read_bytes() == before
    assert cli("keys", "new", "--out", str(tmp_path), "--force").code == 0
    assert (tmp_path / "key.key").read_bytes() != before
    assert mode_of(tmp_path / "key.key") == 0o600


def test_new_errors(cli: CliRunner, tmp_path: Path) -> None:
    line = cli("keys", "new", "--mnemonic", "--type", "p256", "--out", str(tmp_path)).error_line()
    assert "[cli.usage]" in line
    assert "[crypto.key.invalid]" in cli("keys", "new", "--type", "rsa").error_line()
    line = cli("keys", "new", "--out", str(tmp_path / "absent")).error_line()
    assert "[cli.usage]" in line and "does not exist" in line
    empty = tmp_path / "empty"
    empty.write_text("\n")
    line = cli("keys", "new", "--out", str(tmp_path), "--passphrase-file", str(empty)).error_line()
    assert "[crypto.key.invalid]" in line
    assert list(tmp_path.glob("*.key")) == []


def test_show_errors(cli: CliRunner, tmp_path: Path) -> None:
    assert "[crypto.keyfile.missing]" in cli("keys", "show", str(tmp_path / "x")).error_line()
    junk = tmp_path / "junk"
    junk.write_text("hello\n")
    junk.chmod(0o600)
    assert "[crypto.keyfile.corrupt]" in cli("keys", "show", str(junk)).error_line()
    loose = write_private_key(tmp_path / "loose.key", Ed25519PrivateKey.generate())
    loose.chmod(0o644)
    line = cli("keys", "show", str(loose)).error_line()
    assert "[crypto.keyfile.unsafe_permissions]" in line and "chmod 600" in line


def test_derive_from_stdin_matches_library(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "node.key"
    result = cli("keys", "derive", "--path", "m/2'/0'", "--out", str(out), stdin=WORDS + "\n")
    assert result.code == 0, result.err
    expected = derive_ed25519(mnemonic_to_seed(WORDS), "m/2'/0'")
    key = load_private_key(out)
    assert key.private_bytes_raw() == expected
    assert key.public_key.hex() in result.out
    assert expected.hex() not in result.out  # the private key is never printed
    assert mode_of(out) == 0o600


def test_derive_from_file_with_bip39_passphrase(cli: CliRunner, tmp_path: Path) -> None:
    words = tmp_path / "words"
    words.write_text(WORDS.upper() + "\n")
    bip39 = tmp_path / "bip39"
    bip39.write_text("TREZOR\n")
    result = cli(
        "keys",
        "derive",
        "--path",
        ROOT_PATH,
        "--mnemonic-file",
        str(words),
        "--bip39-passphrase-file",
        str(bip39),
    )
    assert result.code == 0, result.err
    seed = mnemonic_to_seed(WORDS, "TREZOR")
    public = Ed25519PrivateKey.from_raw(derive_ed25519(seed, ROOT_PATH)).public_key
    assert public.hex() in result.out


def test_derive_encrypted_output(cli: CliRunner, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    out = tmp_path / "k.key"
    args = ("keys", "derive", "--path", "m/0'", "--out", str(out), "--passphrase-file", str(pw))
    assert cli(*args, stdin=WORDS).code == 0
    assert load_private_key(out, passphrase=b"s3cret").private_bytes_raw() == derive_ed25519(
        mnemonic_to_seed(WORDS), "m/0'"
    )
    assert "[cli.usage]" in cli(*args, stdin=WORDS).error_line()


def test_derive_errors(cli: CliRunner, tmp_path: Path) -> None:
    line = cli("keys", "derive", "--path", "m/0'/1", stdin=WORDS).error_line()
    assert "[identity.derive.non_hardened]" in line
    assert (
        "[identity.derive.path]"
        in cli("keys", "derive", "--path", "x/1'", stdin=WORDS).error_line()
    )
    bad = WORDS.replace("art", "zoo")
    line = cli("keys", "derive", "--path", "m/0'", stdin=bad).error_line()
    assert "[identity.mnemonic.checksum]" in line
    line = cli("keys", "derive", "--path", "m/0'", stdin="abandon nonword").error_line()
    assert "[identity.mnemonic.length]" in line
    words = WORDS.split()
    words[3] = "charterword"
    line = cli("keys", "derive", "--path", "m/0'", stdin=" ".join(words)).error_line()
    assert "[identity.mnemonic.word]" in line and "#4" in line
    line = cli(
        "keys", "derive", "--path", "m/0'", "--mnemonic-file", str(tmp_path / "none")
    ).error_line()
    assert "[crypto.keyfile.missing]" in line


def test_usage_errors_exit_nonzero(cli: CliRunner) -> None:
    result = cli("keys", "derive")
    assert result.code != 0
    assert "Traceback" not in result.err
