"""The ``liaison`` command: run, demo, send, check-config.

    liaison run [-c liaison.toml]          start the engine (embedded defaults without -c)
    liaison worker [-c liaison.toml]       only the pipeline consumers, for more servers on one bus
    liaison demo [--dir DIR]               the whole chain on loopback, with a table of what was delivered
    liaison send --host H --port P FILE…   an MLLP client printing each ACK
    liaison journal search|show [KEY]      a message's timeline: every step, state and reason
    liaison validate [--no-profiles] FILE… check CDA files against CDA_extended.xsd and the CI-SIS schematrons
    liaison check-config FILE              validate a configuration and say what it would start
    liaison whitelist update|check ADDRESS the MSSanté whitelist: fetch and verify it, or check an address
    liaison directory import|lookup        the Annuaire Santé extraction index: build it, or look someone up
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from channels.app.cli import directory as directory_cli, whitelist as whitelist_cli
from channels.app.logs import configure_logging
from router.config import Settings, load_settings
from router.errors import ConfigError
from router.ports import MessageState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liaison", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the engine")
    run.add_argument("-c", "--config", type=Path)
    run.add_argument("--ingest-only", action="store_true",
                     help="only the MLLP listeners (store + queue + ACK); workers run elsewhere")
    worker = sub.add_parser("worker", help="only the pipeline consumers (no listener)")
    worker.add_argument("-c", "--config", type=Path)
    demo = sub.add_parser("demo", help="run the whole chain on loopback with sample messages")
    demo.add_argument("--dir", type=Path, help="where to keep the demo's files (default: a new temp dir)")
    send = sub.add_parser("send", help="send HL7 files over MLLP and print each ACK")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--timeout", type=float, default=10.0)
    send.add_argument("files", nargs="+", type=Path)
    journal = sub.add_parser("journal", help="search the journal, or show one message's timeline")
    journal.add_argument("-c", "--config", type=Path)
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    jsearch = jsub.add_parser("search")
    jsearch.add_argument("--state", choices=[s.value for s in MessageState])
    jsearch.add_argument("--control-id")
    jsearch.add_argument("--limit", type=int, default=50)
    jshow = jsub.add_parser("show")
    jshow.add_argument("key")
    jshow.add_argument("--raw", action="store_true", help="also print the message as received")
    validate = sub.add_parser("validate", help="check CDA files against the XSD and the CI-SIS schematrons")
    validate.add_argument("--schema-dir", type=Path, help="directory of CDA_extended.xsd")
    validate.add_argument("--schematron-dir", type=Path, help="the CI-SIS schematrons directory")
    validate.add_argument("--no-profiles", action="store_true", help="only the volet schematron, not minimal structure")
    validate.add_argument("files", nargs="+", type=Path)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    whitelist_cli.add_parser(sub)
    directory_cli.add_parser(sub)
    args = parser.parse_args(argv)

    quiet = args.command in ("demo", "journal", "send", "check-config", "validate", "whitelist",
                             "directory") and args.log_level == "info"
    configure_logging("warning" if quiet else args.log_level)
    try:
        if args.command == "run":
            settings = load_settings(args.config) if args.config else Settings()
            return asyncio.run(_run(settings, consume=not args.ingest_only))
        if args.command == "worker":
            settings = load_settings(args.config) if args.config else Settings()
            return asyncio.run(_run(settings, listen=False))
        if args.command == "demo":
            from channels.app.demo.run import run_demo
            return asyncio.run(run_demo(args.dir))
        if args.command == "send":
            from channels.mllp.client import send_files
            failures = asyncio.run(send_files(args.host, args.port, args.files, timeout=args.timeout))
            return 1 if failures else 0
        if args.command == "journal":
            from channels.app.cli import journal as journal_cli
            settings = load_settings(args.config) if args.config else Settings()
            if args.journal_command == "search":
                return asyncio.run(journal_cli.search(settings, state=args.state, control_id=args.control_id,
                                                      limit=args.limit))
            return asyncio.run(journal_cli.show(settings, args.key, raw=args.raw))
        if args.command == "validate":
            from channels.app.cli.validate import run_validate
            invalid = run_validate(args.files, schema_dir=args.schema_dir, schematron_dir=args.schematron_dir,
                                   profiles=not args.no_profiles)
            return min(invalid, 125)
        if args.command == "check-config":
            return _check_config(args.file)
        if args.command == "whitelist":
            return asyncio.run(whitelist_cli.run(args))
        if args.command == "directory":
            return asyncio.run(directory_cli.run(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run(settings: Settings, *, listen: bool = True, consume: bool = True) -> int:
    from channels.app.engine import Engine
    if settings.bus.startswith("embedded:") and not (listen and consume):
        # The embedded bus is one file locked by one process: a lone listener or worker has no partner.
        print("warning: the embedded bus serves one process; run listeners and workers apart only on a "
              "shared amqp:// bus", file=sys.stderr)
    engine = Engine(settings)
    await engine.start(listen=listen, consume=consume)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await engine.stop()
    return 0


def _check_config(path: Path) -> int:
    settings = load_settings(path)
    print(f"{path}: valid")
    print(f"  bus      {settings.bus}")
    print(f"  journal  {settings.journal} ({'encrypted' if settings.journal_key else 'NOT encrypted: set LIAISON_JOURNAL_KEY'})")
    for listener in settings.listeners:
        tls = "mTLS" if listener.tls_client_ca else "TLS" if listener.tls_cert else "plain"
        print(f"  listener {listener.name} on {listener.host}:{listener.port} ({tls}, default charset "
              f"{listener.default_charset}, max frame {listener.max_frame_bytes} bytes)")
    print(f"  mss      {settings.mss.relay or 'no relay: documents will wait in deliver.mss'}")
    print(f"  acks     {f'{settings.acks.host}:{settings.acks.port}' if settings.acks.enabled else 'no ZAM destination'}")
    print(f"  site     {settings.site.name} (FINESS {settings.site.finess})")
    print(f"  whitelist {f'{settings.whitelist.source} every {settings.whitelist.refresh_interval:g} s, kept in {settings.whitelist.store_dir}' if settings.whitelist else 'NOT configured: recipients domains are not checked'}")
    national = [part for part in ("index " + settings.directory["index"] if "index" in settings.directory else "",
                                  "FHIR API" if "fhir" in settings.directory else "") if part]
    print(f"  directory {len(settings.correspondents)} correspondent(s) over {' then '.join(national) or 'no national directory'}")
    print(f"  dmp      {settings.dmp.url + ' (VIHF signed by ' + str(settings.dmp.vihf.signing_cert) + ')' if settings.dmp else 'no DMP channel: DESTDMP=Y is answered ZAM^Z01 N'}")
    print(f"  render   schematrons {settings.render.schematrons}; letters to {', '.join(settings.render.letter_roles)}; "
          f"lab reports to {', '.join(settings.render.lab_roles)}")
    for problem in _file_problems(settings):
        print(f"  warning: {problem}")
    return 0


def _file_problems(settings: Settings) -> list[str]:
    problems = []
    for key, value in (("mss.client_cert", settings.mss.client_cert), ("mss.client_key", settings.mss.client_key),
                       ("mss.ca_file", settings.mss.ca_file)):
        if value and not Path(value).is_file():
            problems.append(f"{key}: file {value} not found")
    index = settings.directory.get("index")
    if index and not Path(index).is_file():
        problems.append(f"directory.index: no index at {index} yet (liaison directory import FILE --index {index})")
    fictitious = settings.site.fictitious_keys()
    if fictitious:
        problems.append(f"site: {', '.join(fictitious)} still hold the fictitious test values; rendered documents "
                        "would name a test establishment")
    return problems


if __name__ == "__main__":
    sys.exit(main())
