"""Benchmark CDA validation: XSD and the CI-SIS schematrons, on the official ANS examples.

For each schematron (LDL-SES 2022.01 volet, CR-BIO 2024.01 volet, minimal-structure
profile) prints the one-off compile time in this process (skeleton generation plus
Saxon compilation) and documents/s validating the matching official examples warm;
then documents/s for CDA_extended.xsd over the same documents. Usage::

    .venv/bin/python bench/schematron.py [--seconds 3]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import cda_bench_setup, rate  # noqa: E402
from router.cda_schema import CdaSchemaValidator  # noqa: E402
from router.schematron import MINIMAL_STRUCTURE, SchematronValidator  # noqa: E402

LDL = ["LDL-SES_2022.01.xml"]
BIO = ["BIO-CR-BIO_2024.01_TSH_1.xml", "BIO-CR-BIO_2024.01_TSH_2.xml", "BIO-CR-BIO_2024.01_Glycémie mole.xml",
       "BIO-CR-BIO_2024.01_Microbiologie_V1.xml"]


def main() -> int:
    args, sch_dir, xsd_dir = cda_bench_setup(__doc__.split("\n\n")[0])
    examples = sch_dir.parent / "ExemplesCDA"
    ldl = [(examples / n).read_bytes() for n in LDL]
    bio = [(examples / n).read_bytes() for n in BIO]
    print(f"{'check':<34}{'compile s':>10}{'docs/s':>10}{'ms/doc':>9}{'docs':>7}")
    for name, documents in (("CI-SIS_LDL-SES_2022.01.sch", ldl), ("CI-SIS_BIO-CR-BIO_2024.01.sch", bio),
                            (MINIMAL_STRUCTURE, ldl + bio)):
        started = time.perf_counter()
        validator = SchematronValidator(sch_dir / name)
        compiled = time.perf_counter() - started
        bad = [r.schematron for r in map(validator.validate, documents) if not r.ok]
        per_second, count = rate(validator.validate, documents, args.seconds)
        print(f"{Path(name).name:<34}{compiled:>10.2f}{per_second:>10.1f}{1000 / per_second:>9.1f}{count:>7}"
              + (f"  ({len(bad)} invalid!)" if bad else ""))
    started = time.perf_counter()
    xsd = CdaSchemaValidator(xsd_dir)
    compiled = time.perf_counter() - started
    per_second, count = rate(xsd.validate, ldl + bio, args.seconds)
    print(f"{'CDA_extended.xsd':<34}{compiled:>10.2f}{per_second:>10.1f}{1000 / per_second:>9.1f}{count:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
