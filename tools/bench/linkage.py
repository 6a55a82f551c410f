"""`mlstream bench linkage`: the linkage app's throughput and latency beside the batch baseline, in rounds.

Each round is `mlstream linkage eval`'s throughput pass (:func:`tools.bench.linkage_eval.throughput_pass`:
the records and three bad messages preloaded on fresh topics, a fresh app draining them;
records/s counted between the first and the last link event) and the batch baseline
(``recordlinkage`` on the same records, in this process), alternating. One latency pass at
``latency_rate`` records/s follows (0: none). Median and best of the rounds; every round must
give exactly one link event per record.
"""

from __future__ import annotations

import dataclasses
import os
import statistics

from apps.linker.settings import LinkageSettings, load_config
from linkage.batch_baseline import baseline_quality
from linkage.datasets import FEBRL, load_febrl
from mlstream.errors import UserError
from mlstream.settings import Settings
from tools.bench.linkage_eval import Run, latency_pass, throughput_pass
from tools.bench.rounds import load_average, machine_line
from tools.bench.scorer import Say

TIMEOUT_S = 600


def bench_linkage(settings: Settings, linkage: LinkageSettings, dataset: str = "febrl4", records: int | None = None,
                  repeat: int = 3, latency_rate: float = 500.0, latency_records: int = 5000,
                  say: Say = print) -> dict:
    if repeat < 1 or (records is not None and records < 2) or latency_rate < 0:
        raise UserError("--repeat must be at least 1, --records at least 2 and --latency-rate not negative")
    spec = FEBRL[dataset][1]
    config, version = load_config(spec, settings, linkage.config_store_prefix)
    linkage = dataclasses.replace(linkage, config=spec)
    data = load_febrl(dataset).head(records)
    load_before = load_average()
    app_rounds, batch_rounds = [], []
    for i in range(repeat):
        say(f"round {i + 1}/{repeat}: the linkage app on {len(data.records)} preloaded records")
        run = Run.fresh(settings, linkage, f"bench{i}")
        try:
            stream = throughput_pass(run, data, TIMEOUT_S, say)
        finally:
            run.delete_topics_and_subjects()
        if stream["link_events"] != len(data.records):
            raise UserError(f"round {i + 1}: {stream['link_events']} link events for {len(data.records)} records")
        app_rounds.append({key: stream[key] for key in ("records_per_second", "processing_ms_p50",
                                                        "processing_ms_p99", "f1", "link_events")})
        say(f"round {i + 1}/{repeat}: the batch baseline")
        batch = baseline_quality(config, data.records, data.true_pairs, data.possible_pairs())
        batch_rounds.append({key: batch[key] for key in ("records_per_second", "f1")})
    latency = None
    if latency_rate > 0:
        run = Run.fresh(settings, linkage, "bench-latency")
        try:
            latency = latency_pass(run, data.head(latency_records), latency_rate, TIMEOUT_S, say)
        finally:
            run.delete_topics_and_subjects()
    contenders = {"app": figures(app_rounds), "batch_baseline": figures(batch_rounds)}
    contenders["app"]["ratio_to_batch_baseline"] = round(contenders["app"]["records_per_second"]
                                                         / contenders["batch_baseline"]["records_per_second"], 4)
    return {"dataset": dataset, "records": len(data.records), "config": {"name": config.name, "version": version},
            "repeat": repeat, "cpus": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": load_average(),
            "contenders": contenders, "latency": latency}


def figures(rounds: list[dict]) -> dict:
    rates = [r["records_per_second"] for r in rounds if r["records_per_second"]]
    return {"records_per_second": round(statistics.median(rates), 1) if rates else None,
            "records_per_second_best": max(rates, default=None), "rounds": rounds}


def format_table(result: dict) -> str:
    app, batch, latency = result["contenders"]["app"], result["contenders"]["batch_baseline"], result["latency"]
    lines = [f"{'contender':26} {'median rec/s':>12} {'best rec/s':>11} {'F1':>8}",
             *(f"{title:26} {c['records_per_second']:>12,.0f} {c['records_per_second_best']:>11,.0f} "
               f"{c['rounds'][0]['f1']:>8.4f}" for title, c in (("linkage app (one worker)", app),
                                                               ("batch baseline", batch))),
             f"app / batch baseline: {app['ratio_to_batch_baseline']:.3f}"]
    if latency:
        lines.append(f"latency at {latency['rate']:g} records/s ({latency['records']} records): p50 "
                     f"{latency['latency_ms_p50']} ms, p99 {latency['latency_ms_p99']} ms, max "
                     f"{latency['latency_ms_max']} ms")
    lines.append(f"{result['records']} {result['dataset']} records, config {result['config']['name']}, median and "
                 f"best of {result['repeat']} alternating rounds")
    lines.append(machine_line(result, "every figure is lower"))
    return "\n".join(lines)
