"""Every file in ``exporters/`` (deployment material) parses, and the collector configuration is wired right.

No ``otelcol-contrib`` binary can be installed here (not on PyPI, not in Debian), so the collector file is
checked structurally: the rules ``otelcol validate`` applies to wiring, plus the policies we rely on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "exporters"
COLLECTOR = DEPLOY / "otel-collector.yaml"
PROXY = DEPLOY / "litellm-proxy-config.yaml"
COMPONENT_ID = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?$")


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    config = load(COLLECTOR)
    assert isinstance(config, dict)
    return config


def test_every_deployment_file_parses() -> None:
    files = sorted(p for p in DEPLOY.iterdir() if p.suffix in (".yaml", ".yml"))
    assert {p.name for p in files} >= {"otel-collector.yaml", "litellm-proxy-config.yaml"}
    for path in files:
        assert isinstance(load(path), dict), path
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in files:
        assert path.name in readme, f"{path.name} is not documented in exporters/README.md"


def test_collector_pipelines_reference_defined_components(collector: dict[str, Any]) -> None:
    sections = {
        name: collector.get(name) or {} for name in ("receivers", "processors", "exporters", "connectors", "extensions")
    }
    for name, section in sections.items():
        for component_id in section:
            assert COMPONENT_ID.match(component_id), f"{name}: bad component id {component_id!r}"
    service = collector["service"]
    for extension in service.get("extensions", []):
        assert extension in sections["extensions"]
    pipelines = service["pipelines"]
    assert pipelines
    used: dict[str, set[str]] = {name: set() for name in sections}
    connector_as_exporter: set[str] = set()
    connector_as_receiver: set[str] = set()
    for pipeline_id, pipeline in pipelines.items():
        assert component_type(pipeline_id) in ("traces", "metrics", "logs"), pipeline_id
        assert pipeline.get("receivers") and pipeline.get("exporters"), f"{pipeline_id} needs receivers+exporters"
        for receiver in pipeline["receivers"]:
            assert receiver in sections["receivers"] or receiver in sections["connectors"], receiver
            (connector_as_receiver if receiver in sections["connectors"] else used["receivers"]).add(receiver)
        for processor in pipeline.get("processors", []):
            assert processor in sections["processors"], processor
            used["processors"].add(processor)
        processors = pipeline.get("processors", [])
        assert len(processors) == len(set(processors)), f"{pipeline_id} lists a processor twice"
        if "memory_limiter" in processors:
            assert processors[0] == "memory_limiter", "memory_limiter must come first"
        for exporter in pipeline["exporters"]:
            assert exporter in sections["exporters"] or exporter in sections["connectors"], exporter
            (connector_as_exporter if exporter in sections["connectors"] else used["exporters"]).add(exporter)
    # Every defined component is used; every connector both feeds and is fed (otelcol refuses otherwise).
    assert used["receivers"] == set(sections["receivers"])
    assert used["processors"] == set(sections["processors"])
    assert used["exporters"] == set(sections["exporters"])
    assert connector_as_exporter == connector_as_receiver == set(sections["connectors"])


def _reachable(collector: dict[str, Any], receiver: str) -> dict[str, list[str]]:
    """exporter -> processors on the way, for every exporter the receiver's data reaches (through connectors)."""
    pipelines = collector["service"]["pipelines"]
    connectors = set(collector.get("connectors") or {})
    found: dict[str, list[str]] = {}
    frontier: list[tuple[str, list[str]]] = [(receiver, [])]
    seen: set[str] = set()
    while frontier:
        source, path = frontier.pop()
        for pipeline_id, pipeline in pipelines.items():
            if source not in pipeline["receivers"] or pipeline_id in seen:
                continue
            seen.add(pipeline_id)
            steps = path + list(pipeline.get("processors", []))
            for exporter in pipeline["exporters"]:
                if exporter in connectors:
                    frontier.append((exporter, steps))
                else:
                    found[exporter] = steps
    return found


def test_collector_samples_once_and_exports_to_the_ingest_service_and_a_backend(collector: dict[str, Any]) -> None:
    receivers = collector["receivers"]
    assert "otlp" in receivers and {"grpc", "http"} <= set(receivers["otlp"]["protocols"])
    reached = _reachable(collector, "otlp")
    exporters = collector["exporters"]
    ingest = [e for e in reached if component_type(e) == "otlphttp"]
    backends = [e for e in reached if component_type(e) == "otlp"]
    assert ingest and backends, reached
    for exporter, steps in reached.items():
        assert steps.count("tail_sampling") == 1, f"{exporter}: sampled {steps.count('tail_sampling')} times"
        assert "batch" in steps and steps.index("batch") > steps.index("tail_sampling"), (exporter, steps)
    # The ingest service path, with its bearer token, compressed.
    leanllm = exporters[ingest[0]]
    assert leanllm["traces_endpoint"].endswith("/v1/traces")
    assert leanllm["traces_endpoint"].startswith("${env:LEANLLM_INGEST_ENDPOINT}")
    assert leanllm["headers"]["Authorization"] == "Bearer ${env:LEANLLM_INGEST_TOKEN}"
    assert leanllm["compression"] == "gzip"
    assert leanllm["retry_on_failure"]["enabled"] is True
    # Only LLM spans go to the ingest service.
    llm_filter = next(p for p in reached[ingest[0]] if component_type(p) == "filter")
    assert any("leanllm.request_id" in cond for cond in collector["processors"][llm_filter]["traces"]["span"])
    assert all(component_type(p) != "filter" for p in reached[backends[0]])


def test_tail_sampling_keeps_errors_and_samples_the_rest(collector: dict[str, Any]) -> None:
    policies = collector["processors"]["tail_sampling"]["policies"]
    by_type = {policy["type"]: policy for policy in policies}
    assert by_type["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    percentage = by_type["probabilistic"]["probabilistic"]["sampling_percentage"]
    assert 0 < percentage < 100
    assert len({policy["name"] for policy in policies}) == len(policies)


def test_collector_env_references_are_documented(collector: dict[str, Any]) -> None:
    text = COLLECTOR.read_text(encoding="utf-8")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{env:([A-Z_][A-Z0-9_]*)\}", text))
    assert variables == {"LEANLLM_INGEST_ENDPOINT", "LEANLLM_INGEST_TOKEN", "OTLP_BACKEND_ENDPOINT"}
    for variable in variables:
        assert variable in readme


def test_litellm_proxy_config() -> None:
    config = load(PROXY)
    assert set(config) <= {
        "model_list",
        "litellm_settings",
        "general_settings",
        "environment_variables",
        "router_settings",
        "callback_settings",
    }
    models = config["model_list"]
    assert models
    for entry in models:
        params = entry["litellm_params"]
        assert entry["model_name"] and params["model"].startswith("openai/")
        assert params["api_base"].startswith("os.environ/")
        assert str(params["api_key"]).startswith("os.environ/")  # never a literal secret
    settings = config["litellm_settings"]
    assert settings["turn_off_message_logging"] is True
    assert settings["redact_user_api_key_info"] is True
    assert "otel" not in (settings.get("callbacks") or [])  # would report every call twice
    assert config["general_settings"]["master_key"].startswith("os.environ/")


def test_litellm_proxy_config_validates_against_litellm() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.proxy._types import ConfigYAML

    parsed = ConfigYAML.model_validate(load(PROXY))
    assert parsed.litellm_settings["turn_off_message_logging"] is True
    assert parsed.general_settings is not None
    assert [m.model_name for m in parsed.model_list] == ["gpt-4o-mini", "text-embedding"]
