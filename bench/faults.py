"""The fault suite, long: every scenario of ``tests/faults`` with more messages, and the fault table.

It runs the suite's scenarios (pytest, in a subprocess: the harness is test code, which benchmarks do
not import) with ``LIAISON_FAULTS_MESSAGES`` messages each, collects the row each scenario writes to
``LIAISON_FAULTS_REPORT`` and prints the table: messages, lost, duplicates (and the extra copies of the
SMTP window, told apart), AA without a durable record, ZAMs missing, parked, stuck, processes that died,
claims taken over, and the seconds from the fault until everything was settled. Exit status 1 when a
scenario is not all zeros. Needs what the suite needs: root, RabbitMQ, PostgreSQL and Postfix installed
(its own nodes on 127.0.0.1:5801-5803).

    PYTHONPATH=. .venv/bin/python bench/faults.py [--messages 400] [-k worker]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [("scenario", "scenario"), ("messages", "messages"), ("mails_expected", "mails"), ("lost", "lost"),
           ("duplicates", "duplicates"), ("smtp_window", "SMTP-window copies"),
           ("aa_without_record", "AA without record"), ("zams_missing", "ZAMs missing"), ("parked", "parked"),
           ("stuck", "stuck"), ("died", "died"), ("taken_over", "claims taken over"),
           ("settled_after", "settled after (s)")]
BAD = ("lost", "duplicates", "aa_without_record", "zams_missing", "parked", "stuck", "died")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="messages per scenario (default %(default)s)")
    parser.add_argument("-k", default="", help="only the scenarios whose test name matches (pytest -k)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liaison-faults-bench-") as tmp:
        report = Path(tmp) / "rows.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LIAISON_REQUIRE_FAULTS": "1",
               "LIAISON_FAULTS_MESSAGES": str(args.messages), "LIAISON_FAULTS_REPORT": str(report),
               "LIAISON_FAULTS_SETTLE": str(max(150, args.messages))}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"]
        if args.k:
            command += ["-k", args.k]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    if not rows:
        print(result.stdout[-4000:], result.stderr[-2000:], sep="\n")
        return 1
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row.get(key, "")) for key, _ in COLUMNS) + " |")
    failed = [row["scenario"] for row in rows if any(row.get(key) for key in BAD) or row["aa"] != row["messages"]]
    for row in rows:
        for pair, copies in row.get("copies", {}).items():
            print(f"{row['scenario']}: extra copies of {pair}: " + ", ".join(
                f"{time.strftime('%H:%M:%S', time.gmtime(at))}.{int(at % 1 * 1000):03d} {mid}" for at, mid in copies)
                + "".join(f"; kill at {time.strftime('%H:%M:%S', time.gmtime(k))}.{int(k % 1 * 1000):03d}"
                          for k in row.get("killed_at", [])))
        for pair in row.get("unexplained", []):
            print(f"{row['scenario']}: {pair} copied without a claim taken over by a kill"
                  f"{' (no claim taken over)' if pair not in row.get('taken_over_pairs', []) else ''}")
    print(f"\n{len(rows)} scenario(s), {len(failed)} not all zeros{': ' + ', '.join(failed) if failed else ''}"
          f"; pytest exit {result.returncode}")
    return 1 if failed or result.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
