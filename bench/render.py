"""Benchmark render mode: documents/s for rendering, XSD and schematron validation, separately, in one run.

Inputs are our own render-mode messages (the test corpus builders): an MDM^T02
with a PDF letter and section texts (→ LDL-SES 2022.01), the same MDM with a
consultation type (→ level-1 CDA), and lab ORU^R01 with discrete results
(→ CR-BIO 2024.01, with the lab's PDF, and with a PDF Liaison renders itself).
Rendering includes reading the HL7 message. Validation runs on the rendered
documents: CDA_extended.xsd, the volet schematron of each model, and the
minimal-structure profile. Schematrons are compiled once, before the clock
starts (the engine does the same at start-up), and that one-off cost is
printed too. Usage::

    .venv/bin/python bench/render.py [--seconds 3]
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mappings.cda_level1 import document_type_for, render_level1  # noqa: E402
from mappings.ldl_ses import letter_narrative, render_ldl_ses  # noqa: E402
from mappings.site import Site  # noqa: E402
from router.adt import read_patient_visit  # noqa: E402
from bench.timing import cda_bench_setup, rate  # noqa: E402
from router.cda_schema import CdaSchemaValidator  # noqa: E402
from router.mdm import read_mdm  # noqa: E402
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator  # noqa: E402
from channels.testing.lab_messages import CORPUS as LAB_CORPUS  # noqa: E402
from channels.testing.mdm_messages import make_mdm  # noqa: E402

WHEN = datetime(2024, 3, 15, 16, 30, tzinfo=timezone(timedelta(hours=1)))
SITE = Site()


def render_letter(text: str) -> bytes:
    mdm, patient = read_mdm(text), read_patient_visit(text)
    return render_ldl_ses(patient, letter_pdf=mdm.pdf, narrative=letter_narrative(mdm.narrative), document_id=mdm.unique_id,
                          set_id=mdm.unique_id, author=mdm.author, site=SITE, effective_time=WHEN)


def render_other(text: str) -> bytes:
    mdm, patient = read_mdm(text), read_patient_visit(text)
    type_code = document_type_for(mdm.type_code)
    return render_level1(patient, pdf=mdm.pdf, type_code=type_code, title=type_code[1], document_id=mdm.unique_id,
                         set_id=mdm.unique_id, author=mdm.author, site=SITE, effective_time=WHEN)


def render_lab(text: str) -> bytes:
    from mappings.cr_bio import render_cr_bio
    from router.lab import read_lab_report

    report, patient = read_lab_report(text), read_patient_visit(text)
    ids = report.filler_order or report.placer_order
    return render_cr_bio(report, patient, report_pdf=report.pdf or None, document_id=ids, set_id=ids, site=SITE,
                         effective_time=WHEN)


def main() -> int:
    args, sch_dir, xsd_dir = cda_bench_setup(__doc__.split("\n\n")[0])
    letters = [make_mdm(unique_id=f"DOC-{n}", control_id=f"M{n}") for n in range(4)]
    others = [make_mdm(txa2=code, unique_id=f"OTHER-{code}", narrative={}) for code in ("CN", "OP", "DI")]
    labs = [text for text in (make() for make in LAB_CORPUS.values()) if _publishable(text)]
    lab_pdf_sent = [text for text in labs if _read(text).pdf]
    lab_pdf_ours = [text for text in labs if text not in lab_pdf_sent]

    print(f"{'stage':<50}{'docs/s':>10}{'ms/doc':>9}{'docs':>7}")
    documents: dict[str, list[bytes]] = {}
    for name, work, inputs in (("render LDL-SES (MDM + PDF → CDA)", render_letter, letters),
                               ("render level-1 CDA (MDM + PDF → CDA)", render_other, others),
                               ("render CR-BIO, the lab's PDF", render_lab, lab_pdf_sent),
                               ("render CR-BIO, PDF copy rendered by Liaison", render_lab, lab_pdf_ours)):
        if not inputs:
            continue
        per_second, count = rate(work, inputs, args.seconds)
        print(f"{name:<50}{per_second:>10.1f}{1000 / per_second:>9.2f}{count:>7}")
        documents.setdefault("ldl" if work is render_letter else "other" if work is render_other else "bio",
                             []).extend(work(text) for text in inputs)

    xsd = CdaSchemaValidator(xsd_dir)
    everything = [cda for group in documents.values() for cda in group]
    per_second, count = rate(xsd.validate, everything, args.seconds)
    print(f"{'CDA_extended.xsd (all rendered documents)':<50}{per_second:>10.1f}{1000 / per_second:>9.2f}{count:>7}")
    for schematron, group in (("CI-SIS_LDL-SES_2022.01.sch", documents.get("ldl", [])),
                              ("CI-SIS_BIO-CR-BIO_2024.01.sch", documents.get("bio", [])),
                              (MINIMAL_STRUCTURE, everything)):
        if not group:
            continue
        started = time.perf_counter()
        validator = SchematronValidator(sch_dir / schematron)
        compiled = time.perf_counter() - started
        invalid = sum(1 for cda in group if not validator.validate(cda).ok)
        per_second, count = rate(validator.validate, group, args.seconds)
        label = f"{Path(schematron).name} (compiled once: {compiled:.2f} s)"
        print(f"{label:<50}{per_second:>10.1f}{1000 / per_second:>9.2f}{count:>7}"
              + (f"  ({invalid} invalid!)" if invalid else ""))
    return 0


def _read(text: str):
    from router.lab import read_lab_report

    return read_lab_report(text)


def _publishable(text: str) -> bool:
    """Lab messages that publish a report (corrections and cancellations need an earlier version)."""
    from router.lab import read_lab_report
    from router.model import Action

    try:
        return read_lab_report(text).action is Action.PUBLISH
    except Exception:       # a corpus message written to be refused
        return False


if __name__ == "__main__":
    sys.exit(main())
