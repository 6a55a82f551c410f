"""`mlstream chaos`, small: one SIGKILL and the fuzz set, counted from Kafka; nothing lost, duplicated or crashed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_a_sigkill_and_the_fuzz_set_lose_nothing_and_crash_nothing(services, tmp_path):
    # Through the command line: with --json its stdout is the report alone (the progress once went there too).
    # This interpreter's mlstream (`python -m tools`): make puts no virtualenv on the PATH.
    done = subprocess.run([sys.executable, "-m", "tools", "chaos", "--scenario", "sigkill", "--scenario", "fuzz",
                           "--kills", "1", "--records", "300", "--rate", "50", "--json"],
                          env=os.environ | services.to_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    print(done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    by_name = {scenario["name"]: scenario for scenario in report["scenarios"]}
    totals = report["totals"]
    assert totals["lost"] == totals["unmarked_duplicates"] == totals["crashes"] == 0, report
    # the feed goes on past its 300 records until the restart has scored
    assert by_name["sigkill"]["labels_learned"] == by_name["sigkill"]["labels_sent"] >= 300
    assert by_name["sigkill"]["records_sent"] == by_name["sigkill"]["labels_sent"]
    reasons = by_name["fuzz"]["dead_letter_reasons"]
    assert reasons.get("INVALID_VALUE", 0) >= 5 + 2  # five poison features, two bad labels
    assert reasons.get("RECORD_TOO_LARGE") == 1
    assert by_name["fuzz"]["labels_learned"] == 300  # the feed's labels, none of the poison ones
