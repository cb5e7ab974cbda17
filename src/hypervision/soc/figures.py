"""The SOC export in /metrics (docs/adr/0032, 0037): one series per sink, read at each scrape
from the exporters' state (no query)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hypervision.soc.exporter import Exporter


class SocFigures(Collector):
    def __init__(self, exporters: Sequence[Exporter]) -> None:
        self.exporters = exporters

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        sent = CounterMetricFamily(
            "hypervision_soc_export_messages",
            "Messages (audit records, checkpoints) sent to the SOC by this process, by sink "
            "(replays after a broken connection included).",
            labels=["sink"],
        )
        failures = CounterMetricFamily(
            "hypervision_soc_export_failures",
            "Failed export passes (collector refused, stalled or dropped; file unwritable).",
            labels=["sink"],
        )
        consecutive = GaugeMetricFamily(
            "hypervision_soc_export_consecutive_failures",
            "Failed export passes in a row (0: the last one succeeded).",
            labels=["sink"],
        )
        failing = GaugeMetricFamily(
            "hypervision_soc_export_failing",
            "1 when the consecutive failures reached HYPERVISION_SOC_FAILURE_THRESHOLD.",
            labels=["sink"],
        )
        leader = GaugeMetricFamily(
            "hypervision_soc_export_leader",
            "1 when this process holds the sink's lease (exports to it).",
            labels=["sink"],
        )
        behind = GaugeMetricFamily(
            "hypervision_soc_export_behind_records",
            "Sequenced audit records not yet sent, as last seen by the exporter.",
            labels=["sink"],
        )
        for exporter in self.exporters:
            state = exporter.state
            sent.add_metric([state.sink], state.sent)
            failures.add_metric([state.sink], state.failures)
            consecutive.add_metric([state.sink], state.consecutive)
            failing.add_metric([state.sink], 1 if state.failing else 0)
            leader.add_metric([state.sink], 1 if state.leader else 0)
            behind.add_metric([state.sink], max(0, state.head - state.cursor))
        yield from (sent, failures, consecutive, failing, leader, behind)
