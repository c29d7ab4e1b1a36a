"""The DMP double (``channels/testing/dmp_double.py``) in a process of its own, for ``bench/e2e.py``.

XDS.b ITI-41/ITI-57 over mutual TLS (client certificate signed by the PKI's CA required), every VIHF
signature verified against the cachet CA, the metadata checked against the CDA as the integration tests
do. Its own process so that verifying signatures and parsing MTOM do not share a core's time with the
load generator and the fake HIS.

The bench reads what the double did from ``--ledger``, a text file it appends to as it goes::

    request<TAB><SOAP action>       one line per request received (before any check)
    stored<TAB><uniqueId>           one line per DocumentEntry stored

    python -m bench.dmp_double --pki DIR --cachet-ca FILE --port PORT --ledger FILE
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

import structlog

from channels.testing.dmp_double import DmpDouble
from channels.xds.vihf import verify_vihf

POLL = 0.05      # seconds between two looks at what the double received and stored


async def serve(pki: Path, cachet_ca: Path, port: int, ledger: Path) -> None:
    ca = cachet_ca.read_bytes()
    double = DmpDouble(server_cert=pki / "server.pem", server_key=pki / "server.key", ca_cert=pki / "ca.pem",
                       verify_assertion=lambda assertion: verify_vihf(assertion, ca), port=port)
    await double.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    written_requests = written_stored = 0
    with ledger.open("a", encoding="utf-8") as out:
        try:
            while not stop.is_set():
                # Both grow by appending (a list, an insertion-ordered dict): what is new is at the end.
                requests = double.received[written_requests:]
                stored = (list(double.documents.values())[written_stored:]
                          if len(double.documents) > written_stored else [])
                out.writelines(f"request\t{r.action}\n" for r in requests)
                out.writelines(f"stored\t{d.unique_id}\n" for d in stored)
                out.flush()
                written_requests += len(requests)
                written_stored += len(stored)
                try:
                    await asyncio.wait_for(stop.wait(), POLL)
                except asyncio.TimeoutError:
                    pass
        finally:
            await double.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pki", type=Path, required=True, help="directory written by make_test_pki")
    parser.add_argument("--cachet-ca", type=Path, required=True, help="CA certificate of the VIHF signing cachet")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ledger", type=Path, required=True, help="file the requests and stored entries go to")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(serve(args.pki, args.cachet_ca, args.port, args.ledger))


if __name__ == "__main__":
    main()
