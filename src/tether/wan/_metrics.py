"""``GET /metrics``: the emulator's counters in Prometheus's text format, as Toxiproxy 2.6+
serves them with ``-proxy-metrics``.

Toxiproxy's names and labels: ``toxiproxy_proxy_received_bytes_total`` (bytes read from
the sending side) and ``toxiproxy_proxy_sent_bytes_total`` (bytes written on, after the
toxics), each with ``direction`` (upstream: client to server; downstream: back),
``listener``, ``proxy`` and ``upstream``. Toxiproxy has nothing per toxic; tether adds
``tether_wan_toxic_toxicity`` (one series per toxic, its toxicity as the value) and
``tether_wan_proxy_connections`` (open connections per proxy). Counters count from the
proxy's creation: deleting a proxy forgets them.
"""

from __future__ import annotations

from collections.abc import Iterable

from tether.wan._link_state import LinkState, format_address

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(links: Iterable[LinkState]) -> str:
    links = sorted(links, key=lambda state: state.name)
    received: list[str] = []
    sent: list[str] = []
    connections: list[str] = []
    toxics: list[str] = []
    for state in links:
        proxy = {"listener": format_address(state.listen), "proxy": state.name,
                 "upstream": format_address(state.upstream)}
        for direction, (got, gave) in sorted(state.byte_totals().items(), reverse=True):
            labels = _labels({"direction": direction, **proxy})
            received.append(f"toxiproxy_proxy_received_bytes_total{labels} {got}")
            sent.append(f"toxiproxy_proxy_sent_bytes_total{labels} {gave}")
        connections.append(f"tether_wan_proxy_connections{_labels({'proxy': state.name})} "
                           f"{len(state.connections)}")
        for entry in state.faults.values():
            labels = _labels({"proxy": state.name, "stream": entry.direction, "toxic": entry.name,
                              "type": entry.fault.type_name})
            toxics.append(f"tether_wan_toxic_toxicity{labels} {entry.fault.toxicity:g}")
    out: list[str] = []
    _family(out, "toxiproxy_proxy_received_bytes_total", "counter",
            "The number of bytes received from the client or the server", received)
    _family(out, "toxiproxy_proxy_sent_bytes_total", "counter",
            "The number of bytes sent to the client or the server", sent)
    _family(out, "tether_wan_proxy_connections", "gauge", "Connections open through the proxy", connections)
    _family(out, "tether_wan_toxic_toxicity", "gauge",
            "Each toxic of each proxy: the share of connections it applies to", toxics)
    return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, text: str, samples: list[str]) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(samples)


def _labels(values: dict[str, str]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(values.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
