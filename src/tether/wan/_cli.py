"""``tether wan``: run the emulator, or drive a running one over its HTTP API.

::

    tether wan serve [--host 127.0.0.1] [--port 8474] [--config proxies.json] [--seed N] [--plain]
    tether wan link [--api http://127.0.0.1:8474] list [--json] [--plain]
    tether wan link toxics NAME [--json] [--plain]
    tether wan link stats [--json] [--plain]
    tether wan link create NAME --upstream HOST:PORT [--listen HOST:PORT] [--disabled]
    tether wan link delete NAME
    tether wan link enable|disable NAME
    tether wan link add NAME --type latency -a latency=50 [-a jitter=5]
                            [--stream downstream] [--toxicity 1.0] [--toxic-name N]
    tether wan link remove NAME TOXIC
    tether wan link reset

Attributes use Toxiproxy's names and units (``latency`` in ms, ``rate`` in KB/s...).
Lists are tables: drawn by rich on a terminal (``pip install 'tether[cli]'``), plain
aligned columns elsewhere or with ``--plain``, JSON with ``--json`` (always plain).

Exit codes: 0 success; 1 the API refused the request (its message is printed);
2 bad usage; 3 the API could not be reached or could not listen.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, TextIO

from .._help import plain_help
from .._term import decide, print_table, spinner

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# The verbs that print a list, each as a table (or JSON with --json).
_LISTINGS = {
    "list": "the links and their toxics, as a table",
    "toxics": "a link's toxics, as a table",
    "stats": "each link's open connections and bytes forwarded, as a table",
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``tether wan``; returns the exit code."""
    out = out or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own exit: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command == "serve":
        return _serve(args, out)
    return _link(args, out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tether wan", description=plain_help(__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulator and its HTTP API")
    serve.add_argument("--host", default="127.0.0.1", help="API address (default loopback)")
    serve.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    serve.add_argument("--config", help="JSON array of proxies to create (as /populate)")
    serve.add_argument("--seed", type=int, help="seed for jitter and toxicity rolls")
    serve.add_argument("--plain", action="store_true", help="no spinner, even on a terminal")

    link = sub.add_parser("link", help="drive a running emulator over HTTP")
    link.add_argument("--api", default="http://127.0.0.1:8474", help="API base URL")
    verbs = link.add_subparsers(dest="verb", required=True)
    for verb, what in _LISTINGS.items():
        listing = verbs.add_parser(verb, help=what)
        if verb == "toxics":
            listing.add_argument("name")
        listing.add_argument("--json", action="store_true", help="the API's answer as JSON instead")
        listing.add_argument("--plain", action="store_true", help="plain columns, even on a terminal")
    verbs.add_parser("reset")
    create = verbs.add_parser("create")
    create.add_argument("name")
    create.add_argument("--upstream", required=True)
    create.add_argument("--listen", default="127.0.0.1:0")
    create.add_argument("--disabled", action="store_true")
    for verb in ("delete", "enable", "disable"):
        verbs.add_parser(verb).add_argument("name")
    add = verbs.add_parser("add")
    add.add_argument("name")
    add.add_argument("--type", required=True, dest="toxic_type")
    add.add_argument("--stream", default="downstream", choices=["upstream", "downstream"])
    add.add_argument("--toxicity", type=float, default=1.0)
    add.add_argument("--toxic-name")
    add.add_argument("-a", "--attribute", action="append", default=[], metavar="KEY=VALUE")
    remove = verbs.add_parser("remove")
    remove.add_argument("name")
    remove.add_argument("toxic")
    return parser


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from tether.wan._emulator import Emulator
    from tether.wan._errors import ListenError

    try:
        with spinner(decide(out, plain=args.plain), "starting the WAN emulator"):
            emulator = Emulator(api_host=args.host, api_port=args.port, seed=args.seed)
    except ListenError as exc:
        out.write(f"error: {exc}\n")
        return EXIT_UNREACHABLE
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _SIGNALS}
    try:
        if args.config:
            with open(args.config, encoding="utf-8") as fh, \
                    spinner(decide(out, plain=args.plain), f"creating the links of {args.config}"):
                status, body = _request(f"{emulator.api_url}/populate", "POST", json.load(fh))
            if status >= 400:
                out.write(f"error: {args.config}: {body.get('error')}\n")
                return EXIT_REFUSED
        out.write(f"tether wan: control API on {emulator.api_url} (Ctrl-C to stop)\n")
        out.flush()
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.close()
    return EXIT_OK


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _link(args: argparse.Namespace, out: TextIO) -> int:
    try:
        method, path, body = _link_request(args)
    except ValueError as exc:
        out.write(f"error: {exc}\n")
        return EXIT_USAGE
    try:
        status, answer = _request(args.api.rstrip("/") + path, method, body)
    except OSError as exc:
        out.write(f"error: cannot reach {args.api}: {exc}\n")
        return EXIT_UNREACHABLE
    if status >= 400:
        out.write(f"error: {answer.get('error', answer) if answer else status}\n")
        return EXIT_REFUSED
    if getattr(args, "json", False):
        out.write(json.dumps(answer, indent=2, sort_keys=True) + "\n")  # always plain: a program reads it
    elif args.verb in _LISTINGS:
        print_table(decide(out, plain=args.plain), *_table(args.verb, answer))
    else:
        out.write(json.dumps(answer, indent=2) + "\n" if answer is not None else "ok\n")
    return EXIT_OK


def _link_request(args: argparse.Namespace) -> tuple[str, str, Any]:
    verb = args.verb
    if verb == "list":
        return "GET", "/proxies", None
    if verb == "toxics":
        return "GET", f"/proxies/{args.name}/toxics", None
    if verb == "stats":
        return "GET", "/stats", None
    if verb == "reset":
        return "POST", "/reset", None
    if verb == "create":
        spec = {"name": args.name, "upstream": args.upstream, "listen": args.listen}
        return "POST", "/proxies", {**spec, "enabled": not args.disabled}
    if verb == "delete":
        return "DELETE", f"/proxies/{args.name}", None
    if verb in ("enable", "disable"):
        return "POST", f"/proxies/{args.name}", {"enabled": verb == "enable"}
    if verb == "remove":
        return "DELETE", f"/proxies/{args.name}/toxics/{args.toxic}", None
    toxic: dict[str, Any] = {
        "type": args.toxic_type,
        "stream": args.stream,
        "toxicity": args.toxicity,
        "attributes": dict(_attribute(a) for a in args.attribute),
    }
    if args.toxic_name:
        toxic["name"] = args.toxic_name
    return "POST", f"/proxies/{args.name}/toxics", toxic


def _attribute(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"attribute must be KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _request(url: str, method: str, body: Any) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        with exc:
            payload, status = exc.read(), exc.code
    return status, json.loads(payload) if payload else None


Table = tuple[tuple[str, ...], list[tuple[str, ...]]]


_STATS = ("connections", "bytes_upstream", "bytes_downstream", "buffered")


def _table(verb: str, answer: Any) -> Table:
    """The headers and rows of a listing's table, from the API's answer."""
    if verb == "toxics":
        return ("NAME", "TYPE", "STREAM", "TOXICITY", "ATTRIBUTES"), [_toxic_row(t) for t in answer]
    if verb == "stats":
        headers = ("NAME", "CONNECTIONS", "BYTES UP", "BYTES DOWN", "BUFFERED")
        return headers, [(name, *(str(s[key]) for key in _STATS)) for name, s in sorted(answer.items())]
    rows = [_link_row(name, proxy) for name, proxy in sorted(answer.items())]
    return ("NAME", "LISTEN", "UPSTREAM", "ENABLED", "TOXICS"), rows


def _link_row(name: str, proxy: dict[str, Any]) -> tuple[str, ...]:
    toxics = ", ".join(t["name"] for t in proxy["toxics"]) or "-"
    return name, proxy["listen"], proxy["upstream"], str(proxy["enabled"]), toxics


def _toxic_row(toxic: dict[str, Any]) -> tuple[str, ...]:
    attributes = " ".join(f"{key}={value}" for key, value in sorted(toxic["attributes"].items())) or "-"
    return toxic["name"], toxic["type"], toxic["stream"], f"{toxic['toxicity']:g}", attributes
