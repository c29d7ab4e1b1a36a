"""The ``liaison`` command's manners, run as a newcomer runs it (a subprocess on this tree).

A configuration or input error is one line naming the setting, the file and what was expected, exit 2,
never a traceback; reading commands never create a journal; output into a pipe closed early ends quietly
(exit 141, as a command killed by SIGPIPE); every option says what it is for.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.app.cli.main import EXIT_BROKEN_PIPE, build_parser
from channels.journal import SqliteJournal
from router.config_values import file_problem
from router.ports import ReceivedMessage

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("LIAISON_JOURNAL_KEY", None)


def liaison(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "channels.app.cli.main", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd or ROOT, env=ENV)


def into_closed_pipe(*args: str) -> tuple[int, str]:
    """Run with stdout a pipe whose reading end is already closed: every write gets EPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "channels.app.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "liaison.toml"
    path.write_text(body, encoding="utf-8")
    return path


async def journal_with_messages(path: Path, count: int) -> None:
    async with SqliteJournal(path) as journal:
        for n in range(count):
            await journal.record_received(ReceivedMessage(
                raw=b"MSH|^~\\&|", channel="his", sending_application="HIS", sending_facility="CH",
                control_id=f"MSG{n:04d}", message_type="ORU^R01", received_at=datetime.now(UTC), peer="test"))


# --- reading commands never create a journal --------------------------------------------------------

@pytest.mark.parametrize("command", [["-c", "{toml}", "search"], ["search", "-c", "{toml}"],
                                     ["-c", "{toml}", "show", "01ABCDEF"]])
def test_reading_a_journal_that_does_not_exist_is_an_error_naming_it_and_creates_nothing(tmp_path, command):
    missing = tmp_path / "misspelt" / "journal.sqlite"
    toml = str(config(tmp_path, f'[engine]\njournal = "sqlite://{missing}"\n'))
    done = liaison("journal", *(part.format(toml=toml) for part in command))
    assert done.returncode == 2, done.stdout
    assert str(missing) in done.stderr and "engine.journal" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not missing.parent.exists()


def test_journal_search_without_configuration_does_not_create_the_default_journal():
    default = Path("/var/lib/liaison/journal.sqlite")
    if default.exists() or default.parent.exists():
        pytest.skip(f"{default.parent} exists on this machine")
    done = liaison("journal", "search")
    assert done.returncode == 2 and str(default) in done.stderr and "-c FILE" in done.stderr
    assert not default.parent.exists()


async def test_journal_search_reads_an_existing_journal(tmp_path):
    path = tmp_path / "journal.sqlite"
    await journal_with_messages(path, 3)
    done = liaison("journal", "-c", str(config(tmp_path, f'[engine]\njournal = "sqlite://{path}"\n')), "search")
    assert done.returncode == 0, done.stderr
    assert [line.split()[4] for line in done.stdout.splitlines()[1:]] == ["MSG0002", "MSG0001", "MSG0000"]


# --- pipes ----------------------------------------------------------------------------------------------

async def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path):
    path = tmp_path / "journal.sqlite"
    await journal_with_messages(path, 5)
    toml = str(config(tmp_path, f'[engine]\njournal = "sqlite://{path}"\n'))
    for args in (("journal", "-c", toml, "search"), ("check-config", toml)):
        status, err = into_closed_pipe(*args)
        assert (status, err) == (EXIT_BROKEN_PIPE, ""), args


def test_a_shell_pipe_into_head_ends_quietly(tmp_path):
    toml = config(tmp_path, "[engine]\n")
    shell = f"{sys.executable} -m channels.app.cli.main check-config {toml} | head -n 1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV)
    assert done.returncode == 0 and done.stdout.startswith(f"{toml}: valid")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# --- configuration and input errors ----------------------------------------------------------------------

def bad_configurations(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (arguments, what stderr must name)."""
    (tmp_path / "key.bin").write_bytes(b"\xff\xfe\x00 not a key")
    (tmp_path / "latin1.toml").write_bytes("[site]\nname = \"Hôpital\"\n".encode("latin-1"))
    (tmp_path / "broken.toml").write_text("[engine\n")
    (tmp_path / "a-directory.toml").mkdir()
    (tmp_path / "keys").mkdir()
    binary_key = tmp_path / "binary-key.toml"
    binary_key.write_text('[engine]\njournal_key_file = "key.bin"\n')
    key_dir = tmp_path / "key-dir.toml"
    key_dir.write_text('[engine]\njournal_key_file = "keys"\n')
    engine = (f'[engine]\nbus = "embedded://{tmp_path}/bus.sqlite"\njournal = "sqlite://{tmp_path}/journal.sqlite"\n'
              'cda_schema_required = false\n')
    tls = tmp_path / "tls.toml"
    tls.write_text(engine + '[[listeners]]\nport = 0\ntls_cert = "absent-cert.pem"\ntls_key = "absent-key.pem"\n')
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    mss = tmp_path / "mss.toml"
    mss.write_text(engine + '[[listeners]]\nport = 0\n[mss]\nrelay = "smtps://127.0.0.1:9"\n'
                   f'sender = "pfi@ch-test.mssante.fr"\nnil = "X"\nclient_cert = "{tmp_path}/junk.pem"\n'
                   f'client_key = "{tmp_path}/junk.pem"\n')
    quiet_run = ["--log-level", "error", "run", "-c"]
    return {
        "listener certificate missing": ([*quiet_run, str(tls)],
                                         ["listeners[0].tls_cert", "absent-cert.pem", "does not exist", "expected"]),
        "MSSanté client certificate not PEM": ([*quiet_run, str(mss)],
                                               ["mss.client_cert", "junk.pem", "cannot be loaded", "expected"]),
        "journal key file not ASCII": (["check-config", str(binary_key)],
                                       ["engine.journal_key_file", "key.bin", "not ASCII", "expected"]),
        "journal key file a directory": (["journal", "-c", str(key_dir), "search"],
                                         ["engine.journal_key_file", "keys", "is a directory", "expected"]),
        "configuration not UTF-8": (["check-config", str(tmp_path / "latin1.toml")],
                                    ["latin1.toml", "not UTF-8", "expected"]),
        "configuration not TOML": (["check-config", str(tmp_path / "broken.toml")],
                                   ["broken.toml", "not valid TOML", "line 1"]),
        "configuration a directory": (["run", "-c", str(tmp_path / "a-directory.toml")],
                                      ["a-directory.toml", "is a directory", "expected"]),
        "configuration missing": (["check-config", str(tmp_path / "absent.toml")],
                                  ["absent.toml", "does not exist", "expected"]),
        "file to send missing": (["send", "--port", "9", str(tmp_path / "absent.hl7")],
                                 ["absent.hl7", "does not exist", "expected", "nothing was sent"]),
        "file to send a directory": (["send", "--port", "9", str(tmp_path / "keys")],
                                     ["keys", "is a directory", "expected"]),
    }


def test_configuration_and_input_errors_name_the_setting_the_file_and_what_was_expected(tmp_path):
    for name, (args, named) in bad_configurations(tmp_path).items():
        done = liaison(*args)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (name, done.stderr)
        for word in named:
            assert word in done.stderr, (name, word, done.stderr)


def test_file_problems_in_a_few_words():
    assert file_problem(PermissionError(13, "Permission denied", "/etc/liaison.toml")) == \
        "cannot be read: permission denied"
    assert file_problem(FileNotFoundError(2, "No such file or directory")) == "does not exist"
    assert file_problem(NotADirectoryError(20, "Not a directory")).endswith("is not a directory")
    assert file_problem(UnicodeDecodeError("utf-8", b"ab\xe9", 2, 3, "invalid")) == \
        "is not UTF-8 text (byte 0xe9 at offset 2)"


# --- help ---------------------------------------------------------------------------------------------

def options(parser: argparse.ArgumentParser, path: str = "liaison"):
    """(command path, action) for every option and argument of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_of_every_command_says_what_it_is_for():
    parser, _ = build_parser()
    # `liaison validate` is being reworked on its own branch; its options are checked there.
    silent = [f"{path} {action.option_strings or action.dest}" for path, action in options(parser)
              if not (action.help or "").strip() and not path.startswith("liaison validate")]
    assert silent == []


def test_help_describes_liaison_in_plain_words():
    done = liaison("--help")
    assert done.returncode == 0
    first = done.stdout.split("\n\n")[1]
    assert first.startswith("Liaison, a hospital integration engine") and "``" not in done.stdout
    for command in ("run", "worker", "demo", "send", "journal", "validate", "check-config", "whitelist",
                    "directory"):
        assert f"liaison {command}" in done.stdout
