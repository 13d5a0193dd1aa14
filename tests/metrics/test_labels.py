"""Which series a playbook asks Prometheus for: its namespace and Service, or what it is told."""

from __future__ import annotations

from oncall.playbooks import HighErrorRateConfig, HighLLMLatencyConfig, PodCrashLoopConfig


def test_the_service_and_namespace_select_the_series() -> None:
    config = HighErrorRateConfig(namespace="payments", service="ledger")
    assert config.metrics_labels() == {"namespace": "payments", "service": "ledger"}
    assert HighLLMLatencyConfig().metrics_labels() == {
        "namespace": "gremlinsai",
        "service": "gremlinsai-service",
    }


def test_configured_labels_win() -> None:
    config = PodCrashLoopConfig(prometheus_labels={"job": "ledger-api", "env": "prod"})
    assert config.metrics_labels() == {"job": "ledger-api", "env": "prod"}


def test_an_address_names_no_service() -> None:
    class Bare(HighErrorRateConfig):
        service: str = ""

    named = Bare(namespace="payments", service_url="http://ledger.payments.svc:8080")
    assert named.metrics_labels() == {"namespace": "payments", "service": "ledger"}
    local = Bare(namespace="payments", service_url="http://127.0.0.1:41234")
    assert local.metrics_labels() == {"namespace": "payments"}
