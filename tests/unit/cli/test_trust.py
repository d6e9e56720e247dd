"""``rkt trust``: rkt's output and exit codes, the fingerprint review, and where keys are written.

Every run has configuration directories of its own (the kit's runner), so /etc/rkt is never
touched.
"""

import os
import pty
import stat
import subprocess
from pathlib import Path

import pytest

from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.terminal import drain
from rkt_core.trust.pubkeys import fingerprint_text

PREFIX = "example.com/hello"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("signer"), uid="Signer <signer@example.com>") as s:
        yield s


@pytest.fixture
def key(tmp_path, signer):
    path = tmp_path / "key.asc"
    path.write_bytes(signer.export_public())
    return str(path)


@pytest.fixture
def runner(rkt):
    """The kit's runner, without --insecure-options."""
    rkt.insecure = ""
    return rkt


@pytest.fixture
def local(runner) -> Path:
    """The local configuration directory, where keys are written."""
    return runner.local_config


@pytest.fixture
def trust(runner):
    """``rkt trust ARGS`` with stdin that is not a terminal: (exit status, stdout, stderr)."""
    def run(*args, stdin=""):
        result = runner("trust", *args, input=stdin)
        return result.returncode, result.stdout, result.stderr
    return run


def _files(root):
    return sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs)


def test_fingerprint_is_shown_in_rkt_groups():
    assert (fingerprint_text("8b86de38890ddb7291867b025210bd8888182190")
            == "8B86 DE38 890D DB72 9186  7B02 5210 BD88 8818 2190")


def test_skip_review_adds_prefix_key_with_rkt_output(local, runner, trust, key, signer):
    code, out, err = trust("--prefix", PREFIX, "--skip-fingerprint-review", key)
    fingerprint = signer.fingerprint.lower()
    path = local / "trustedkeys/prefix.d/example.com/hello" / fingerprint
    assert code == 0, err
    assert out == (f"gpg key fingerprint is: {fingerprint_text(fingerprint)}\n"
                   "\tSigner <signer@example.com>\n"
                   f'Trusting "{key}" for prefix "{PREFIX}" without fingerprint review.\n'
                   f'Added key for prefix "{PREFIX}" at "{path}"\n')
    assert err == f'pubkey: prefix: "{PREFIX}"\nkey: "{key}"\n'
    assert path.read_bytes() == signer.export_public()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert not runner.system_config.exists()


def test_root_key_from_a_file_url(local, trust, key, signer):
    code, out, err = trust("--root", "--skip-fingerprint-review", f"file://{key}")
    path = local / "trustedkeys/root.d" / signer.fingerprint.lower()
    assert code == 0, err
    assert f'Trusting "file://{key}" for prefix "" without fingerprint review.\n' in out
    assert out.endswith(f'Added root key at "{path}"\n')
    assert path.is_file()


def test_global_flags_also_work_after_the_command(runner, local, key, signer):
    argv = runner.argv()
    command = argv.index("-m") + 2  # python -m rkt_core.cli.main FLAGS...
    argv = [*argv[:command], "trust", *argv[command:], "--prefix", PREFIX,
            "--skip-fingerprint-review", key]
    result = subprocess.run(argv, capture_output=True, text=True, env=runner.env)
    assert result.returncode == 0, result.stderr
    assert _files(local) == [
        f"trustedkeys/prefix.d/example.com/hello/{signer.fingerprint.lower()}"]


@pytest.mark.parametrize("args, message", [
    (["--prefix", PREFIX, "--root", "KEY"], "--root and --prefix usage mutually exclusive"),
    (["KEY"], "aborting due to implicit unbounded trust (root domain)"),
    ([], "--prefix or --root is required"),
    (["--prefix", "https://example.com/hello", "KEY"],
     "--prefix must not contain a URL scheme, omit https://"),
    (["--prefix", "evil.com/../coreos.com/etcd", "--skip-fingerprint-review", "KEY"], ""),
    (["--root"], "--root requires a PUBKEY"),
    (["--prefix", PREFIX, "--skip-fingerprint-review", "/does/not/exist"],
     "error adding keys: open /does/not/exist: no such file or directory"),
    (["--prefix", PREFIX, "http://example.com/key.asc"],
     "--insecure-allow-http required for http URLs"),
    (["--prefix", PREFIX, "https://127.0.0.1:1/key.asc"], "error adding keys: key: "),
    (["--prefix", PREFIX, "ftp://example.com/key.asc"], "only local files"),
])
def test_errors_exit_254_and_write_nothing(local, trust, key, args, message):
    code, out, err = trust(*[key if a == "KEY" else a for a in args])
    assert code == 254
    assert err.startswith("rkt: ")
    assert message in err
    assert not (local).exists()


def test_unbounded_trust_explains_both_ways(trust, key):
    _, _, err = trust(key)
    assert 'rkt trust --prefix "example.com/foo" [PUBKEY]' in err
    assert "rkt trust --root PUBKEY" in err


def test_secret_key_is_refused(tmp_path, local, trust, signer):
    secret = tmp_path / "secret.asc"
    secret.write_bytes(signer.export_secret())
    code, _, err = trust("--prefix", PREFIX, "--skip-fingerprint-review", str(secret))
    assert code == 254 and "secret key" in err
    assert not (local).exists()


def test_review_needs_a_terminal(local, trust, key, signer):
    code, out, err = trust("--prefix", PREFIX, key, stdin="yes\n")
    assert code == 254
    assert "gpg key fingerprint is:" in out  # shown before refusing
    assert ("rkt: error adding keys: error reviewing key: unable to ask user to review "
            "fingerprint due to lack of tty") in err
    assert "--skip-fingerprint-review" in err
    assert not (local).exists()


def _run_on_tty(runner, args, answer: bytes):
    """Run the real ``rkt`` with stdin and stderr on a pseudo-terminal; stdout is a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(runner.argv(*args), stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, env=runner.env)
    os.close(slave)
    os.write(master, answer)
    out = proc.stdout.read().decode()
    code = proc.wait(timeout=60)
    terminal = drain(master)
    return code, out, terminal.decode().replace("\r\n", "\n")


def test_yes_on_the_terminal_trusts_the_key(local, runner, key, signer):
    code, out, terminal = _run_on_tty(runner, ["trust", "--prefix", PREFIX, key], b"yes\n")
    path = local / "trustedkeys/prefix.d/example.com/hello" / signer.fingerprint.lower()
    assert code == 0, terminal
    assert out.endswith("Are you sure you want to trust this key (yes/no)?\n"
                        f'Trusting "{key}" for prefix "{PREFIX}" after fingerprint review.\n'
                        f'Added key for prefix "{PREFIX}" at "{path}"\n')
    assert f'pubkey: prefix: "{PREFIX}"\nkey: "{key}"\n' in terminal
    assert path.is_file()


def test_no_on_the_terminal_does_not_trust(local, runner, key):
    code, out, terminal = _run_on_tty(runner, ["trust", "--prefix", PREFIX, key], b"no\n")
    assert code == 0
    assert out.endswith("Are you sure you want to trust this key (yes/no)?\n")
    assert f'pubkey: not trusting "{key}"' in terminal
    assert not (local).exists()


def test_other_answers_are_asked_again_and_eof_is_an_error(local, runner, key):
    code, out, _ = _run_on_tty(runner, ["trust", "--root", key], b"y\nmaybe\nyes\n")
    assert code == 0
    assert out.count("Please enter 'yes' or 'no'\n") == 2
    assert 'Added root key at "' in out

    code, out, terminal = _run_on_tty(runner, ["trust", "--prefix", PREFIX, key], b"\x04")
    assert code == 254
    assert "error reviewing key: error reading input: EOF" in terminal
