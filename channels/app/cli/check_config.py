"""``liaison check-config FILE``: validate a configuration and say what it would start.

Exit status 0 when the configuration is valid (with a warning line for each file
it names that is missing, or for a site still fictitious), 2 when it is not (the
error names the key).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from channels.app.settings import Settings, load_settings
from router.config_values import redact_url


def add_parser(subparsers) -> None:
    """Add ``check-config`` to the ``liaison`` sub-commands."""
    check = subparsers.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path, metavar="FILE", help="the liaison.toml to check")


async def run(args: argparse.Namespace) -> int:
    return check_config(args.file)


def check_config(path: Path) -> int:
    """Print what the configuration at ``path`` would start; 0 (an invalid one raises ConfigError)."""
    settings = load_settings(path)
    print(f"{path}: valid")
    if isinstance(settings.bus, str):
        print(f"  bus      {redact_url(settings.bus)}")
    else:
        nodes = ", ".join(redact_url(url) for url in settings.bus)
        print(f"  bus      RabbitMQ cluster of {len(settings.bus)} nodes, tried in order: {nodes}")
    print(f"  journal  {redact_url(settings.journal)} ({'encrypted' if settings.journal_key else 'NOT encrypted: set LIAISON_JOURNAL_KEY'})")
    for listener in settings.listeners:
        tls = "mTLS" if listener.tls_client_ca else "TLS" if listener.tls_cert else "plain"
        print(f"  listener {listener.name} on {listener.host}:{listener.port} ({tls}, default charset "
              f"{listener.default_charset}, max frame {listener.max_frame_bytes} bytes)")
    print(f"  mss      {settings.mss.relay or 'no relay: documents will wait in deliver.mss'}")
    print(f"  acks     {f'{settings.acks.host}:{settings.acks.port}' if settings.acks.enabled else 'no ZAM destination'}")
    imap = settings.imap
    print(f"  notices  {f'imaps://{imap.host}:{imap.port} as {imap.user}, {imap.mailbox} -> {imap.done_folder} / {imap.unrecognised_folder}' if imap else 'not read ([imap] not set): the HIS hears only what the relay said'}")
    print(f"  site     {settings.site.name} (FINESS {settings.site.finess})")
    print(f"  whitelist {f'{settings.whitelist.source} every {settings.whitelist.refresh_interval:g} s, kept in {settings.whitelist.store_dir}' if settings.whitelist else 'NOT configured: recipients domains are not checked'}")
    national = [part for part in ("index " + settings.directory["index"] if "index" in settings.directory else "",
                                  "FHIR API" if "fhir" in settings.directory else "") if part]
    print(f"  directory {len(settings.correspondents)} correspondent(s) over {' then '.join(national) or 'no national directory'}")
    print(f"  dmp      {settings.dmp.url + ' (VIHF signed by ' + str(settings.dmp.vihf.signing_cert) + ')' if settings.dmp else 'no DMP channel: DESTDMP=Y is answered ZAM^Z01 N'}")
    print(f"  render   schematrons {settings.render.schematrons}; letters to {', '.join(settings.render.letter_roles)}; "
          f"lab reports to {', '.join(settings.render.lab_roles)}")
    r = settings.retention
    kept = [f"{what} {days} days" for what, days in (("content", r.content_days), ("messages", r.metadata_days),
                                                        ("audit", r.audit_days)) if days is not None]
    print(f"  retention {', '.join(kept) + f' (a pass every {r.interval} s)' if kept else 'none: everything is kept'}")
    for problem in _file_problems(settings):
        print(f"  warning: {problem}")
    return 0


def _file_problems(settings: Settings) -> list[str]:
    problems = []
    for key, value in (("mss.client_cert", settings.mss.client_cert), ("mss.client_key", settings.mss.client_key),
                       ("mss.ca_file", settings.mss.ca_file),
                       *((f"imap.{k}", getattr(settings.imap, k)) for k in ("client_cert", "client_key", "ca_file")
                         if settings.imap is not None)):
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
