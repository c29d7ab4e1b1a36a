"""The ``liaison`` command as a newcomer uses it: check-config, send, and the demo."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from channels.app.cli.main import main
from channels.app.demo.run import run_demo
from tests.integration.test_pfi_bad_input import PATIENT, CDA
from channels.testing.messages import encode_message, make_pfi_oru

ROOT = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_example_and_names_the_bad_key(tmp_path, capsys, monkeypatch):
    assert main(["check-config", str(ROOT / "deploy" / "liaison.example.toml")]) == 2    # its key file is absent
    assert "engine.journal_key_file" in capsys.readouterr().err
    monkeypatch.setenv("LIAISON_JOURNAL_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert main(["check-config", str(ROOT / "deploy" / "liaison.example.toml")]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "render   schematrons volet" in out
    minimal = tmp_path / "minimal.toml"
    minimal.write_text('[[correspondents]]\nrpps = "12345678903"\naddress = "dr@medecin-test.mssante.fr"\n')
    assert main(["check-config", str(minimal)]) == 0
    out = capsys.readouterr().out
    assert "1 correspondent(s)" in out and "warning: site: finess" in out
    assert "whitelist NOT configured" in out       # the fictitious default site
    assert "notices  not read" in out
    (tmp_path / "imap-password").write_text("secret\n")
    with_imap = tmp_path / "imap.toml"
    with_imap.write_text('[imap]\nurl = "imaps://imap.test:993"\nuser = "pfi@ch.mssante.fr"\n'
                         'password_file = "imap-password"\nca_file = "absent.pem"\n')
    assert main(["check-config", str(with_imap)]) == 0
    out = capsys.readouterr().out
    assert "notices  imaps://imap.test:993 as pfi@ch.mssante.fr, INBOX -> Liaison/Traités" in out
    assert "imap.ca_file: file absent.pem not found" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[mss]\nrelay = "smtp://relay:587"\n')
    assert main(["check-config", str(bad)]) == 2
    assert "mss.sender" in capsys.readouterr().err


def test_check_config_accepts_a_rabbitmq_cluster_as_a_list_of_node_urls(tmp_path, capsys):
    nodes = [f"amqp://liaison:secret@rabbit-{n}.local:5672/" for n in "abc"]
    cluster = tmp_path / "cluster.toml"
    cluster.write_text(f"[engine]\nbus = {nodes!r}\n".replace("'", '"'))
    assert main(["check-config", str(cluster)]) == 0
    out = capsys.readouterr().out
    shown = ", ".join(n.replace(":secret@", ":***@") for n in nodes)
    assert f"bus      RabbitMQ cluster of 3 nodes, tried in order: {shown}" in out
    assert "secret" not in out                                   # passwords are never printed
    cluster.write_text('[engine]\nbus = ["amqp://rabbit-a/", "embedded:///tmp/bus.sqlite"]\n')
    assert main(["check-config", str(cluster)]) == 2
    assert "engine.bus[1]" in capsys.readouterr().err


async def test_demo_delivers_every_sample_and_its_journal_tells_every_step(tmp_path, capsys):
    lines: list[str] = []
    assert await run_demo(tmp_path / "demo", out=lines.append) == 0
    text = "\n".join(lines)
    assert "every document was delivered to every recipient" in text
    assert text.count("accepted") == 7
    assert "rendered-letter" in text and "LDL-SES rendered by Liaison" in text
    assert "MSSanté whitelist: the demo's own list" in text
    assert len(list((tmp_path / "demo" / "xdm").glob("*_IHE_XDM.ZIP"))) == 5
    his = tmp_path / "demo" / "his"
    # Z02 when the relay took each mail and again when its DSN said delivered; Z03 when the doctor's MDN said read.
    assert len(list(his.glob("*_ZAM_Z02.hl7"))) == 8
    z03s = sorted(his.glob("*_ZAM_Z03.hl7"))
    assert len(z03s) == 2
    readers = [p.read_bytes().decode("utf-8") for p in z03s]
    assert all("ACK_LECTURE_MSS" in z and "|Y^^expandedYes-NoIndicator|" in z for z in readers)
    assert any("LECTEUR_MSS" in z and "^^X.400^paul.durand@ch-test.mssante.fr|" in z for z in readers)
    [durand] = [line for line in lines if "paul.durand@ch-test.mssante.fr" in line and "lab-report" in line]
    assert "accepted (Z02)" in durand and "delivered (Z02)" in durand and "read (Z03)" in durand
    assert text.count("read (Z03)") == 2 and text.count("delivered (Z02)") == 4
    assert "notices: every DSN and MDN was applied (7 delivered, 2 read)" in text
    assert "7 DSN 'delivered'" in text and "2 MDN 'displayed'" in text and "9 moved to .Liaison.Traités" in text
    assert ("4 ZAM^Z02 when the relay took the mail, 4 ZAM^Z02 when the DSN said delivered (ACK_RECEPTION=Y), "
            "2 ZAM^Z03 when the MDN said read (ACK_LECTURE_MSS=Y)") in text
    done_box = tmp_path / "demo" / "mail" / "pfi@ch-test.mssante.fr" / ".Liaison.Traités" / "cur"
    assert len(list(done_box.iterdir())) == 9
    # the summary's counts are what is on disk, and say why they differ
    copies = list((tmp_path / "demo" / "mail").glob("*/new/*.eml"))
    mailboxes = {path.parent.parent for path in copies}
    assert f"mails sent through the relay: 5," in text
    assert f"{len(copies)} copies, one per recipient, in {len(mailboxes)} mailboxes" in text and len(copies) == 7
    assert "ZAM acknowledgements (HIS):   10 in" in text and "render-mode messages ask for none" in text
    assert "11490-0 Lettre de liaison à la sortie - CH de Test " in text          # titles are not cut
    hint = next(line for line in lines if "see every step:" in line).split("see every step:", 1)[1].split()
    done = subprocess.run(hint, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "ORU^R01" in done.stdout, done.stderr     # the printed command runs as is

    config = str(tmp_path / "demo" / "liaison.toml")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["journal", "-c", config, "search", "--state", "delivered"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 5 and "ORU^R01" in "".join(listing) and "ADT^A03" in "".join(listing)
    assert "".join(listing).count("MDM^T02") == 2                  # the PFI letter and the rendered one
    key = next(line for line in listing if "ORU^R01" in line).split()[0]
    assert await asyncio.to_thread(main, ["journal", "-c", config, "show", key]) == 0
    timeline = capsys.readouterr().out
    for step in ("received", "queued", "processing", "schema", "dispatched", "outcome", "zam", "delivered"):
        assert f"  {step} " in timeline
    assert "ZAM^Z03 Y for paul.durand@ch-test.mssante.fr" in timeline
    [durand] = [line for line in timeline.splitlines() if line.strip().startswith("paul.durand@ch-test.mssante.fr")
                and "relayed 20" in line]
    assert "delivered 20" in durand and "read 20" in durand and "displayed by paul.durand" in durand
    rendered = next(line for line in listing if "MDM^T02" in line)          # newest first: the rendered letter
    assert await asyncio.to_thread(main, ["journal", "-c", config, "show", rendered.split()[0]]) == 0
    timeline = capsys.readouterr().out
    assert "  render " in timeline and "  recipient " in timeline and "chose the PER mailbox" in timeline


async def test_send_prints_one_line_per_message_with_its_ack(tmp_path):
    from tests.integration.harness import Pipeline
    from channels.testing.pki import make_test_pki
    pipe = Pipeline(tmp_path, make_test_pki(tmp_path / "pki"), relay_port=9)   # no relay needed to get an ACK
    await pipe.start()
    try:
        good = encode_message(make_pfi_oru(CDA, patient=PATIENT, control_id="CLI-1"))
        refused = encode_message(make_pfi_oru(CDA, patient=PATIENT, control_id="CLI-2", message_type="ADT^A99"))
        path = tmp_path / "two.hl7"
        path.write_bytes(good.replace(b"\r", b"\n") + refused)      # a file with LF endings and two messages
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "channels.app.cli.main", "send", "--port", str(pipe.engine.port("his")), str(path),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        lines = out.decode().strip().splitlines()
        assert proc.returncode == 1, err.decode()           # one message was not accepted
        assert "AA" in lines[0] and "CLI-1" in lines[0]
        assert "AR" in lines[1] and "CLI-2" in lines[1]
    finally:
        await pipe.stop()


async def test_listener_configured_with_mutual_tls_refuses_a_client_without_certificate(tmp_path):
    import ssl
    from channels.app.engine import Engine
    from channels.mllp.sender import MllpSender
    from channels.testing.pki import make_test_pki
    from channels.app.settings import settings_from_dict
    from router.errors import PeerUnavailable
    pki = make_test_pki(tmp_path / "pki")
    settings = settings_from_dict({
        "engine": {"bus": f"embedded://{tmp_path / 'bus.sqlite'}", "journal": f"sqlite://{tmp_path / 'j.sqlite'}"},
        "listeners": [{"name": "tls", "port": 0, "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key),
                       "tls_client_ca": str(pki.ca_cert)}]})
    engine = Engine(settings)
    await engine.start(consume=False)
    try:
        raw = encode_message(make_pfi_oru(CDA, patient=PATIENT, control_id="TLS-1"))
        with_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
        with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        async with MllpSender("localhost", engine.port("tls"), ssl_context=with_cert) as sender:
            reply, _ = await sender.exchange(raw)
        assert reply.code == "AA"
        without_cert = ssl.create_default_context(cafile=str(pki.ca_cert))
        try:
            async with MllpSender("localhost", engine.port("tls"), ssl_context=without_cert, timeout=5) as sender:
                await sender.exchange(encode_message(make_pfi_oru(CDA, patient=PATIENT, control_id="TLS-2")))
        except PeerUnavailable:
            pass
        else:
            raise AssertionError("a client without certificate was served")
        assert [r.control_id for r in await engine.journal.search()] == ["TLS-1"]
    finally:
        await engine.stop()


async def test_engine_refuses_to_start_without_the_cda_schema_unless_told(tmp_path, monkeypatch):
    import channels.app.engine
    from channels.app.engine import Engine
    from channels.app.settings import settings_from_dict
    from router.errors import ConfigError
    monkeypatch.setattr(channels.app.engine, "locate_schema_dir", lambda configured=None: None)   # nowhere to be found
    engine_table = {"bus": f"embedded://{tmp_path / 'bus.sqlite'}", "journal": f"sqlite://{tmp_path / 'j.sqlite'}"}
    engine = Engine(settings_from_dict({"engine": engine_table, "listeners": [{"port": 0}]}))
    try:
        await engine.start()
    except ConfigError as exc:
        assert exc.key == "engine.cda_schema_dir"
    else:
        await engine.stop()
        raise AssertionError("started without CDA_extended.xsd")
    assert engine.journal is None                       # refused before opening anything
    relaxed = Engine(settings_from_dict({"engine": {**engine_table, "cda_schema_required": False},
                                         "listeners": [{"port": 0}]}))
    await relaxed.start()
    assert relaxed.servers and not relaxed.schema_dir
    await relaxed.stop()


def test_validate_checks_our_sample_cdas_against_the_xsd_and_the_ci_sis_schematrons(capsys, tmp_path):
    from tests.support.fixtures import require_fixture
    require_fixture("TestContenuCDA-3-0", "schematrons")
    samples = sorted((ROOT / "channels" / "app" / "demo" / "samples" / "cda").glob("*.xml"))
    assert main(["validate", *map(str, samples)]) == 0
    assert capsys.readouterr().out.count(": OK") == len(samples) == 2
    broken = tmp_path / "broken.xml"
    from lxml import etree
    doc = etree.parse(str(samples[0]))
    birth = doc.find(".//{urn:hl7-org:v3}recordTarget//{urn:hl7-org:v3}birthTime")
    birth.getparent().remove(birth)                 # still schema-valid: only the schematrons can tell
    broken.write_bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "[xsd]" not in out and ".sch]" in out
