"""``quic-offload demo``: watch idle QUIC connections stay alive without waking the application.

By default everything runs in this process, on loopback: an aioquic echo server and N aioquic
clients, both ends offloaded to one shared embedded engine.  The idle timeout is compressed
(3 s) so that, without keepalives, every connection would die within the run; once a
connection has been idle for --park-after seconds it is parked and the engine alone sends its
PINGs and ACKs.  Halfway through, a random subset of clients sends an echo request: their
parked ends resume, answer, and park again.  The run ends with a verdict (exit status 0 when
every connection is alive and every request was answered, 1 otherwise, 2 for usage errors).

``--serve HOST:PORT`` runs only the offloaded echo server and ``--connect HOST:PORT`` only the
offloaded clients, so either side can be tried against another QUIC implementation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import signal
import ssl
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio import connect as plain_connect
from aioquic.asyncio import serve as plain_serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicErrorCode

from quic_offload.aioquic import OffloadPolicy, OffloadRuntime, ParkingController, controller_of
from quic_offload.aioquic import connect as offload_connect
from quic_offload.aioquic import serve as offload_serve
from quic_offload.offload_abi import MAX_CONNS
from quic_offload.offload_client import OffloadGeometry
from quic_offload.self_signed import write_self_signed
from uring.backends import BACKEND_NAMES

#: ALPN of the demo's echo protocol (every bidirectional stream is sent back to its opener).
DEMO_ALPN = "quic-offload-echo"
#: How long one connection attempt may take before it counts as failed (seconds).
CONNECT_TIMEOUT = 10.0
#: How long one echo request may wait for its answer (seconds).
REQUEST_TIMEOUT = 5.0
#: When the requests are due but some end has not parked yet, look again this much later...
REQUEST_RECHECK = 0.1
#: ...but send them anyway once this share of the duration has passed.
REQUEST_LATEST = 0.8
#: Handshakes in flight at once (each costs a signature and a few round trips).
CONNECT_CONCURRENCY = 32
#: Closing every connection at the end gives up after this long (seconds).
TEARDOWN_TIMEOUT = 3.0
#: Most connections one run may open (the server end needs a slot too when both are parked).
MAX_CONNECTIONS = MAX_CONNS // 2
OFFLOAD_CHOICES = ("both", "server", "client", "none")
LOOP_CHOICES = ("uvloop", "asyncio")


class DemoUsageError(ValueError):
    """The command line asks for something the demo cannot do; exit status 2."""


# =============================================================================================
# The application protocol
# =============================================================================================


class DemoProtocol(QuicConnectionProtocol):
    """The demo's application: unchanged aioquic, plus a record of how the connection ended.

    With ``echo`` set (the server), every client-opened bidirectional stream is sent back as
    it arrives, FIN included.
    """

    echo = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handshake_done = False
        self.ended: events.ConnectionTerminated | None = None
        self.streams_echoed = 0

    @property
    def alive(self) -> bool:
        return self.handshake_done and self.ended is None

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self.handshake_done = True
        elif isinstance(event, events.ConnectionTerminated) and self.ended is None:
            self.ended = event
        elif (self.echo and isinstance(event, events.StreamDataReceived)
              and event.stream_id % 4 == 0):
            # the caller (datagram_received) transmits right after the events are handled
            self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
            if event.end_stream:
                self.streams_echoed += 1
            return
        super().quic_event_received(event)


class EchoServerProtocol(DemoProtocol):
    echo = True


def ending_label(event: events.ConnectionTerminated) -> str:
    """How a connection ended, in words for the report ("Idle timeout", "closed (NO_ERROR)")."""
    if event.reason_phrase:
        return event.reason_phrase
    try:
        return f"closed ({QuicErrorCode(event.error_code).name})"
    except ValueError:
        return f"closed (error {event.error_code:#x})"


def is_lost(event: events.ConnectionTerminated) -> bool:
    """A termination other than an orderly close: idle timeout, reset, protocol error."""
    return event.error_code != QuicErrorCode.NO_ERROR or event.reason_phrase.lower() in (
        "idle timeout", "stateless reset")


# =============================================================================================
# Options
# =============================================================================================


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str, *, allow_port_zero: bool = False) -> Endpoint:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise DemoUsageError(f"{text!r}: write an IPv6 address as [ADDR]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise DemoUsageError(f"{text!r}: expected HOST:PORT (e.g. 127.0.0.1:4433)")
        if ":" in host:
            raise DemoUsageError(f"{text!r}: write an IPv6 address as [ADDR]:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise DemoUsageError(f"{text!r}: port {port_text!r} is not a number") from None
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise DemoUsageError(f"{text!r}: port must be {low}..65535")
    return Endpoint(host, port)


@dataclass(frozen=True)
class DemoOptions:
    """Everything one run needs, checked."""

    mode: str  # "local", "serve" or "connect"
    offload: str  # "both", "server", "client" or "none"
    connections: int
    duration: float  # 0: until Ctrl-C (serve only)
    interval: float
    park_after: float
    idle_timeout: float
    requests: int
    backend: str
    loop: str
    json: bool
    alpn: str
    endpoint: Endpoint | None = None
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    insecure: bool = False
    seed: int | None = None

    @property
    def offloads_server(self) -> bool:
        return self.offload in ("both", "server")

    @property
    def offloads_client(self) -> bool:
        return self.offload in ("both", "client")

    @property
    def policy(self) -> OffloadPolicy:
        return OffloadPolicy(park_after=self.park_after, keepalive_interval=self.interval)

    @property
    def request_at(self) -> float:
        """When the echo requests go out: after several keepalive rounds of parked time."""
        settled = self.park_after + 3 * self.interval + 0.5
        return min(max(self.duration * 0.5, settled), self.duration * 0.75)


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """Check the parsed command line; :class:`DemoUsageError` names the offending option."""
    if args.serve and args.connect:
        raise DemoUsageError("--serve and --connect exclude each other (give one, or neither "
                             "for the in-process demo)")
    mode = "serve" if args.serve else "connect" if args.connect else "local"
    endpoint = None
    if args.serve:
        endpoint = parse_endpoint(args.serve, allow_port_zero=True)
    elif args.connect:
        endpoint = parse_endpoint(args.connect)
    default_offload = {"local": "both", "serve": "server", "connect": "client"}[mode]
    offload = args.offload or default_offload
    if mode == "serve" and offload not in ("server", "both", "none"):
        raise DemoUsageError(f"--offload {offload}: with --serve only the server side runs "
                             "here; use --offload server or none")
    if mode == "connect" and offload not in ("client", "both", "none"):
        raise DemoUsageError(f"--offload {offload}: with --connect only the clients run "
                             "here; use --offload client or none")
    if mode != "local" and offload == "both":
        offload = default_offload
    if (args.cert is None) != (args.key is None):
        raise DemoUsageError("--cert and --key go together (or give neither for a "
                             "self-signed certificate)")
    if args.cert is not None and mode != "serve":
        raise DemoUsageError("--cert/--key only apply with --serve")
    if (args.ca is not None or args.insecure) and mode != "connect":
        raise DemoUsageError("--ca/--insecure only apply with --connect")
    if args.ca is not None and args.insecure:
        raise DemoUsageError("--ca and --insecure exclude each other")
    for name in ("cert", "key", "ca"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            raise DemoUsageError(f"--{name} {path}: no such file")
    duration = args.duration
    if duration is None:
        duration = 15.0
    if duration == 0 and mode != "serve":
        raise DemoUsageError("--duration 0 (run until Ctrl-C) only applies with --serve")
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        raise DemoUsageError(f"--connections {args.connections}: must be 1..{MAX_CONNECTIONS}")
    if args.loop == "uvloop" and not _uvloop_available():
        raise DemoUsageError("--loop uvloop: uvloop is not installed; use --loop asyncio")
    if args.interval >= args.idle_timeout:
        raise DemoUsageError(f"--interval {args.interval:g} must be shorter than "
                             f"--idle-timeout {args.idle_timeout:g}, or the keepalives "
                             "cannot keep anything alive")
    return DemoOptions(
        mode=mode, offload=offload, connections=args.connections, duration=duration,
        interval=args.interval, park_after=args.park_after, idle_timeout=args.idle_timeout,
        requests=args.requests, backend=args.backend, loop=args.loop or _default_loop(),
        json=args.json, alpn=args.alpn, endpoint=endpoint,
        cert=Path(args.cert) if args.cert else None, key=Path(args.key) if args.key else None,
        ca=Path(args.ca) if args.ca else None, insecure=args.insecure, seed=args.seed,
    )


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _default_loop() -> str:
    return "uvloop" if _uvloop_available() else "asyncio"


def _seconds(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if value < minimum or (value == minimum and not inclusive) or value != value:
            bound = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"{text}: must be {bound} {minimum:g} seconds")
        return value
    return parse


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text}: must be >= {minimum}")
        return value
    return parse


# =============================================================================================
# What a run observes
# =============================================================================================


@dataclass
class Sides:
    """The live objects of a run, filled in as connections come up."""

    runtime: OffloadRuntime | None = None
    clients: list[DemoProtocol] = field(default_factory=list)
    servers: list[DemoProtocol] = field(default_factory=list)
    connect_failures: list[str] = field(default_factory=list)
    #: The demo's own sends that found their connection parked (each resumes it; they are
    #: the application working, not a wake-up the offload failed to avoid).
    requests_ok: int = 0
    requests_sent: int = 0
    requests_failed: int = 0
    request_errors: list[str] = field(default_factory=list)
    request_latencies: list[float] = field(default_factory=list)

    def controllers(self, side: str) -> list[ParkingController]:
        protocols = self.clients if side == "client" else self.servers
        found = (controller_of(p) for p in protocols)
        return [c for c in found if c is not None]


def sample(sides: Sides, options: DemoOptions, elapsed: float) -> dict[str, Any]:
    """The run's numbers right now (the live line and the final report are made of these)."""
    out: dict[str, Any] = {"elapsed": elapsed}
    clients_alive = sum(p.alive for p in sides.clients)
    servers_alive = sum(p.alive for p in sides.servers)
    if options.mode == "local":
        out["alive"] = min(clients_alive, servers_alive)
        out["clients_alive"], out["server_alive"] = clients_alive, servers_alive
    elif options.mode == "serve":
        out["alive"] = servers_alive
    else:
        out["alive"] = clients_alive
    ended: dict[str, int] = {}
    lost = 0
    for proto in (*sides.clients, *sides.servers):
        if proto.ended is not None:
            label = ending_label(proto.ended)
            ended[label] = ended.get(label, 0) + 1
            lost += is_lost(proto.ended)
    out["ended"], out["lost"] = ended, lost
    out["connections"] = (sum(p.handshake_done for p in sides.servers)
                          if options.mode == "serve" else options.connections)
    parked: dict[str, int] = {}
    ends = 0
    parks = resumes = 0
    for side in ("server", "client"):
        ctls = sides.controllers(side)
        if not ctls:
            continue
        ends += len(ctls)
        parked[side] = sum(c.state == "parked" for c in ctls)
        parks += sum(c.parks for c in ctls)
        resumes += sum(c.resumes for c in ctls)
    if options.mode != "serve":
        # ends that will be offloaded once connected (so the count is right from the start)
        per_connection = (options.offloads_server and options.mode == "local") + (
            options.offloads_client)
        ends = max(ends, per_connection * options.connections)
    out["offloaded_ends"] = ends
    out["parked"] = sum(parked.values())
    out["parked_by_side"] = parked
    out["parks"], out["resumes"] = parks, resumes
    runtime = sides.runtime
    if runtime is not None and not runtime.closed:
        stats = runtime.engine_stats()
        out["engine"] = stats
        out["app_wakeups_while_parked"] = runtime.counters["events_while_parked"]
        out["local_sends_while_parked"] = runtime.counters["local_sends_while_parked"]
    else:
        out["engine"] = None
        out["app_wakeups_while_parked"] = 0
    return out


def live_line(s: dict[str, Any]) -> str:
    """One line of progress: who is alive and parked, what the engine did for them."""
    parts = [f"[{s['elapsed']:5.1f}s]", f"alive {s['alive']}/{s['connections']}"]
    engine = s["engine"]
    if engine is not None:
        parts.append(f"parked {s['parked']}/{s['offloaded_ends']}")
    if engine is not None:
        wakes = sum(engine["wakes"].values())
        parts += [f"PINGs {engine['pings_sent']}",
                  f"ACKs rx {engine['acks_received']} tx {engine['acks_sent']}",
                  f"wakes {wakes}",
                  f"app wake-ups {s['app_wakeups_while_parked']}"]
    return "  ".join(parts)


def build_report(s: dict[str, Any], sides: Sides, options: DemoOptions,
                 backend: str | None, loop_name: str) -> dict[str, Any]:
    """The final JSON object."""
    engine = s["engine"] or {}
    latencies = sorted(sides.request_latencies)
    report: dict[str, Any] = {
        "mode": options.mode,
        "offload": options.offload,
        "connections": s["connections"],
        "alive": s["alive"],
        "parked": s["parked"],
        "parked_by_side": s["parked_by_side"],
        "offloaded_ends": s["offloaded_ends"],
        "parks": s["parks"],
        "resumes": s["resumes"],
        "pings_sent": engine.get("pings_sent", 0),
        "ping_acks_sent": engine.get("ping_acks_sent", 0),
        "acks_received": engine.get("acks_received", 0),
        "acks_sent": engine.get("acks_sent", 0),
        "packets_received": engine.get("packets_received", 0),
        "datagrams_received": engine.get("datagrams_received", 0),
        "datagrams_passed": engine.get("datagrams_passed", 0),
        "late_ping_ms_max": round(engine.get("late_ping_ns_max", 0) / 1e6, 3),
        "wakes": engine.get("wakes", {}),
        "app_wakeups_while_parked": s["app_wakeups_while_parked"],
        "local_sends_while_parked": s.get("local_sends_while_parked", 0),
        # requests actually sent (none when the run was interrupted before their time)
        "requests": sides.requests_sent,
        "requests_ok": sides.requests_ok,
        "requests_failed": sides.requests_failed,
        "request_ms_median": round(statistics.median(latencies) * 1e3, 3) if latencies else None,
        "request_ms_max": round(latencies[-1] * 1e3, 3) if latencies else None,
        "connect_failures": len(sides.connect_failures),
        "ended": s["ended"],
        "lost": s["lost"],
        "backend": backend,
        "loop": loop_name,
        "duration": round(s["elapsed"], 3),
        "idle_timeout": options.idle_timeout,
        "interval": options.interval,
        "park_after": options.park_after,
    }
    if options.mode == "local":
        report["clients_alive"] = s["clients_alive"]
        report["server_alive"] = s["server_alive"]
    if options.mode == "serve":
        # the server answers whatever its peers ask: every echoed stream is a request
        report["requests"] = report["requests_ok"] = sum(p.streams_echoed
                                                         for p in sides.servers)
    report["ok"], report["verdict"] = verdict(report, options)
    return report


def verdict(r: dict[str, Any], options: DemoOptions) -> tuple[bool, str]:
    """Good when every connection is alive (serve: none was lost) and every request was
    answered; the text says what the run showed, or what went wrong."""
    problems: list[str] = []
    if options.mode == "serve":
        if r["lost"]:
            problems.append(f"{r['lost']} connection(s) lost ({_ended_text(r['ended'])})")
    else:
        if r["alive"] != r["connections"]:
            text = f"only {r['alive']}/{r['connections']} connections alive"
            if r["ended"]:
                text += f" (ended: {_ended_text(r['ended'])})"
            if r["connect_failures"]:
                text += f", {r['connect_failures']} failed to connect"
            problems.append(text)
        if r["requests_ok"] != r["requests"]:
            problems.append(f"{r['requests_ok']}/{r['requests']} requests answered")
        if options.offload != "none" and r["alive"] and r["parks"] == 0:
            problems.append("no connection ever parked (is --park-after shorter than "
                            "--duration?)")
    seconds = f"{r['duration']:.0f} s"
    if options.offload == "none":
        summary = (f"without offload: {r['alive']}/{r['connections']} connections alive after "
                   f"{seconds} with a {options.idle_timeout:g} s idle timeout")
    elif options.mode == "serve":
        summary = (f"{r['connections']} connection(s) served, {r['alive']} open; "
                   f"{r['pings_sent']} PINGs and {r['acks_sent']} ACKs sent by the engine, "
                   f"{r['app_wakeups_while_parked']} app wake-ups while parked; "
                   f"{r['requests_ok']} echo requests answered")
    else:
        summary = (f"{r['alive']}/{r['connections']} connections alive after {seconds} with a "
                   f"{options.idle_timeout:g} s idle timeout; the engine sent "
                   f"{r['pings_sent']} PINGs ({r['acks_received']} ACKed) and "
                   f"{r['acks_sent']} ACKs, {r['app_wakeups_while_parked']} app wake-ups "
                   f"while parked")
        if r["requests"]:
            summary += (f"; {r['requests_ok']}/{r['requests']} requests answered after "
                        f"resume ({r['resumes']} resumes)")
    if problems:
        return False, "FAIL -- " + "; ".join(problems) + ". " + summary
    return True, "OK -- " + summary


def _ended_text(ended: dict[str, int]) -> str:
    """``{"Idle timeout": 40}`` -> ``"40 ends by Idle timeout"``."""
    return ", ".join(f"{n} end{'s' * (n != 1)} by {label}"
                     for label, n in sorted(ended.items())) or "none"


# =============================================================================================
# Progress output
# =============================================================================================


class Progress:
    """The live line: redrawn in place on a terminal, one line per second otherwise."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self._drawn = False

    def say(self, text: str) -> None:
        if self.stream is None:
            return
        self._clear()
        print(text, file=self.stream, flush=True)

    def update(self, line: str) -> None:
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self._drawn = True
        else:
            print(line, file=self.stream, flush=True)

    def finish(self) -> None:
        if self._drawn and self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _clear(self) -> None:
        if self._drawn and self.stream is not None:
            self.stream.write("\r\x1b[K")
            self._drawn = False


# =============================================================================================
# Running
# =============================================================================================


def _server_configuration(options: DemoOptions, cert: Path, key: Path) -> QuicConfiguration:
    config = QuicConfiguration(is_client=False, alpn_protocols=[options.alpn],
                               idle_timeout=options.idle_timeout)
    config.load_cert_chain(cert, key)
    return config


def _client_configuration(options: DemoOptions, *, cafile: Path | None,
                          server_name: str | None = None) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=[options.alpn],
                               idle_timeout=options.idle_timeout, server_name=server_name)
    if options.insecure:
        config.verify_mode = ssl.CERT_NONE
    elif cafile is not None:
        config.load_verify_locations(cafile=str(cafile))
    return config


def _geometry(options: DemoOptions) -> OffloadGeometry:
    ends = options.connections * (2 if options.offload == "both" else 1)
    return OffloadGeometry(max_parked=min(MAX_CONNS, max(4096, ends + 64)))


def _raise_fd_limit(needed: int) -> None:
    """One UDP socket per client: lift the soft descriptor limit when the run needs it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class DemoRun:
    """One run of the demo (any mode) on the running event loop."""

    def __init__(self, options: DemoOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.sides = Sides()
        self.loop = asyncio.get_running_loop()
        #: Set by Ctrl-C / SIGTERM: end the observation early.
        self.stop = asyncio.Event()
        #: Set by teardown: the clients close their connections.
        self.closing = asyncio.Event()
        self.interrupted = False
        self.started = self.loop.time()
        self._client_tasks: list[asyncio.Task[None]] = []
        self._request_tasks: list[asyncio.Task[None]] = []
        self._server: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        #: The server's certificate (the in-process clients verify against it).
        self.server_cert: Path | None = None

    @property
    def elapsed(self) -> float:
        return self.loop.time() - self.started

    @property
    def backend(self) -> str | None:
        return self.sides.runtime.backend if self.sides.runtime is not None else None

    @property
    def loop_name(self) -> str:
        return "uvloop" if type(self.loop).__module__.startswith("uvloop") else "asyncio"

    async def execute(self) -> dict[str, Any]:
        """Start this mode's sides, watch them for the duration; the last sample."""
        options = self.options
        if options.offload != "none":
            self._runtime()  # first, so the header can name the backend it picked
        for line in _describe(options, self.backend, self.loop_name):
            self.progress.say(line)
        request_at = options.request_at if options.requests else None
        if options.mode == "local":
            host, port = await self.start_server("127.0.0.1", 0)
            self.start_clients(host, port, self.server_cert, "localhost")
            return await self.observe(request_at)
        assert options.endpoint is not None
        if options.mode == "serve":
            host, port = await self.start_server(options.endpoint.host, options.endpoint.port)
            until = f"for {options.duration:g} s" if options.duration else "until Ctrl-C"
            self.progress.say(f"listening on {Endpoint(host, port)} alpn={options.alpn} "
                              f"{until}")
            return await self.observe(None)
        self.start_clients(options.endpoint.host, options.endpoint.port, options.ca, None)
        return await self.observe(request_at)

    # -- setup ------------------------------------------------------------------------------

    def _runtime(self) -> OffloadRuntime:
        if self.sides.runtime is None:
            self.sides.runtime = OffloadRuntime(_geometry(self.options),
                                                backend=self.options.backend, loop=self.loop)
        return self.sides.runtime

    def _certificate(self) -> tuple[Path, Path]:
        if self.options.cert is not None and self.options.key is not None:
            cert, key = self.options.cert, self.options.key
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="quic-offload-demo-")
            cert, key = write_self_signed(Path(self._tmp.name))
        self.server_cert = cert
        return cert, key

    async def start_server(self, host: str, port: int) -> tuple[str, int]:
        options = self.options
        cert, key = self._certificate()
        config = _server_configuration(options, cert, key)

        def create_protocol(*args: Any, **kwargs: Any) -> DemoProtocol:
            protocol = EchoServerProtocol(*args, **kwargs)
            self.sides.servers.append(protocol)
            return protocol

        try:
            self._server = await self._serve(host, port, config, create_protocol)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {Endpoint(host, port)}: "
                                     f"{exc.strerror or exc}") from None
        # a plain aioquic server (--offload none) has no public accessor for its address
        sockname = self._server._transport.get_extra_info("sockname")
        return sockname[0], sockname[1]

    async def _serve(self, host: str, port: int, config: QuicConfiguration,
                     create_protocol: Callable[..., DemoProtocol]) -> Any:
        options = self.options
        if options.offloads_server:
            return await offload_serve(
                host, port, configuration=config, create_protocol=create_protocol,
                policy=options.policy, offload=self._runtime())
        return await plain_serve(host, port, configuration=config,
                                 create_protocol=create_protocol)

    def start_clients(self, host: str, port: int, cafile: Path | None,
                      server_name: str | None) -> None:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        _raise_fd_limit(self.options.connections + 256)
        for index in range(self.options.connections):
            self._client_tasks.append(asyncio.ensure_future(
                self._client(index, host, port, cafile, server_name, gate)))

    async def _client(self, index: int, host: str, port: int, cafile: Path | None,
                      server_name: str | None, gate: asyncio.Semaphore) -> None:
        options = self.options
        config = _client_configuration(options, cafile=cafile, server_name=server_name)
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with gate:
                    if self.closing.is_set():
                        return
                    if options.offloads_client:
                        context = offload_connect(
                            host, port, configuration=config, create_protocol=DemoProtocol,
                            policy=options.policy, offload=self._runtime())
                    else:
                        context = plain_connect(host, port, configuration=config,
                                                create_protocol=DemoProtocol)
                    protocol = await asyncio.wait_for(stack.enter_async_context(context),
                                                      CONNECT_TIMEOUT)
            except (TimeoutError, OSError, ConnectionError) as exc:
                detail = str(exc) or (f"no handshake with {Endpoint(host, port)} (is a QUIC "
                                      f"server listening there, accepting ALPN "
                                      f"{options.alpn!r}?)")
                self.sides.connect_failures.append(f"{type(exc).__name__}: {detail}")
                return
            assert isinstance(protocol, DemoProtocol)
            self.sides.clients.append(protocol)
            await self.closing.wait()

    # -- requests ---------------------------------------------------------------------------

    def send_requests(self) -> None:
        """Echo requests on a random subset of the connected clients (each client runs its
        share one after the other, so no two overlap on one connection)."""
        clients = [p for p in self.sides.clients if p.alive]
        count = self.options.requests
        if not count:
            return
        self.sides.requests_sent = count
        rng = random.Random(self.options.seed)
        per_client: dict[int, int] = {}
        if clients:
            order = rng.sample(range(len(clients)), len(clients))
            for i in range(count):
                per_client[order[i % len(order)]] = per_client.get(order[i % len(order)], 0) + 1
        unassigned = count - sum(per_client.values())
        self.sides.requests_failed += unassigned
        if unassigned:
            self.sides.request_errors.append(f"{unassigned} request(s): no live connection")
        for index, n in per_client.items():
            self._request_tasks.append(asyncio.ensure_future(
                self._requests_on(clients[index], index, n)))

    async def _requests_on(self, protocol: DemoProtocol, index: int, n: int) -> None:
        for k in range(n):
            payload = f"echo #{k} on connection {index} at {self.elapsed:.1f}s".encode()
            try:
                await asyncio.wait_for(self._request(protocol, payload), REQUEST_TIMEOUT)
            except (TimeoutError, OSError, ConnectionError, ValueError) as exc:
                self.sides.requests_failed += 1
                self.sides.request_errors.append(f"{type(exc).__name__}: {exc}")

    async def _request(self, protocol: DemoProtocol, payload: bytes) -> None:
        start = self.loop.time()
        reader, writer = await protocol.create_stream()
        writer.write(payload)
        writer.write_eof()
        answer = await reader.read()
        if answer != payload:
            raise ValueError(f"echo mismatch: sent {len(payload)} bytes, got {answer[:40]!r}")
        self.sides.requests_ok += 1
        self.sides.request_latencies.append(self.loop.time() - start)

    def _ends_still_parking(self, elapsed: float) -> bool:
        """Whether some offloaded end has not parked yet and the run has time to wait for it
        (up to :data:`REQUEST_LATEST` of the duration, so the requests still finish)."""
        duration = self.options.duration
        if duration and elapsed >= duration * REQUEST_LATEST:
            return False
        now = sample(self.sides, self.options, elapsed)
        return now["parked"] < now["offloaded_ends"]

    # -- the observation loop ---------------------------------------------------------------

    async def observe(self, request_at: float | None) -> dict[str, Any]:
        """Redraw the live line every second until the duration is up (or Ctrl-C); send the
        requests at ``request_at``; returns the last sample, taken before teardown."""
        duration = self.options.duration
        next_draw = 0.0
        while True:
            elapsed = self.elapsed
            if duration and elapsed >= duration:
                break
            if request_at is not None and elapsed >= request_at:
                if self._ends_still_parking(elapsed):
                    # a slow start (a loaded machine, a distant peer) left ends unparked:
                    # the requests are there to show a resume, so give them a moment more
                    request_at = elapsed + REQUEST_RECHECK
                else:
                    request_at = None
                    self.progress.say(f"[{elapsed:5.1f}s] sending {self.options.requests} "
                                      "echo request(s) on random connections")
                    self.send_requests()
            if elapsed >= next_draw:
                self.progress.update(live_line(sample(self.sides, self.options, elapsed)))
                next_draw += 1.0
            wake_at = min(next_draw, duration if duration else next_draw)
            if request_at is not None:
                wake_at = min(wake_at, request_at)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, wake_at - elapsed))
            if self.stop.is_set():
                self.interrupted = True
                break
        if self._request_tasks:
            await asyncio.gather(*self._request_tasks, return_exceptions=True)
        final = sample(self.sides, self.options, self.elapsed)
        self.progress.update(live_line(final))
        self.progress.finish()
        return final

    # -- teardown ---------------------------------------------------------------------------

    async def teardown(self) -> None:
        """Close the clients, then the server, then the engine; bounded in time."""
        self.closing.set()
        if self._client_tasks:
            _, pending = await asyncio.wait(self._client_tasks, timeout=TEARDOWN_TIMEOUT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            self._server.close()
            await asyncio.sleep(0.05)
        if self.sides.runtime is not None:
            self.sides.runtime.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _install_interrupt(run: DemoRun) -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        run.loop.add_signal_handler(signal.SIGINT, run.stop.set)
        run.loop.add_signal_handler(signal.SIGTERM, run.stop.set)


def _describe(options: DemoOptions, backend: str | None, loop_name: str) -> list[str]:
    engine = f"{backend} backend" if backend else "no engine"
    sides = {"both": "both ends offloaded to one shared engine",
             "server": "the server's ends offloaded, plain aioquic clients",
             "client": "the clients' ends offloaded, plain aioquic server",
             "none": "plain aioquic on both ends, no keepalive"}[options.offload]
    lines = []
    if options.mode == "local":
        lines.append(f"quic-offload demo: {options.connections} QUIC connections on loopback, "
                     f"echo server and clients in this process; {sides} ({engine}, "
                     f"{loop_name})")
    elif options.mode == "serve":
        lines.append(f"quic-offload demo: echo server, "
                     f"{'offloaded' if options.offloads_server else 'not offloaded'} "
                     f"({engine}, {loop_name})")
    else:
        lines.append(f"quic-offload demo: {options.connections} connection(s) to "
                     f"{options.endpoint}, "
                     f"{'offloaded' if options.offloads_client else 'not offloaded'} "
                     f"({engine}, {loop_name})")
    lines.append(f"  idle timeout {options.idle_timeout:g} s: without keepalives an idle "
                 f"connection dies after {options.idle_timeout:g} s")
    if options.offload != "none":
        lines.append(f"  a connection idle for {options.park_after:g} s is parked; the engine "
                     f"then PINGs every {options.interval:g} s and answers the peer's PINGs")
    if options.mode != "serve" and options.requests:
        then = (" (parked ends resume, then park again)" if options.offload != "none"
                else "")
        lines.append(f"  at {options.request_at:.1f} s, {options.requests} echo request(s) go "
                     f"out on random connections{then}")
    return lines


async def run_demo(options: DemoOptions, out: TextIO) -> dict[str, Any]:
    """Run the demo as ``options`` say and return the report (the live output goes to
    ``out``, or to stderr when the report is to be JSON)."""
    run = DemoRun(options, Progress(sys.stderr if options.json else out))
    _install_interrupt(run)
    try:
        final = await run.execute()
    finally:
        await run.teardown()
    report = build_report(final, run.sides, options, run.backend, run.loop_name)
    report["interrupted"] = run.interrupted
    if run.interrupted:
        report["verdict"] += " (stopped early by a signal)"
    if run.sides.request_errors:
        report["request_errors"] = run.sides.request_errors[:10]
    if run.sides.connect_failures:
        report["connect_errors"] = sorted(set(run.sides.connect_failures))[:10]
    return report


def _print_report(report: dict[str, Any], out: TextIO) -> None:
    wakes = {k: v for k, v in report["wakes"].items() if v}
    if report["offload"] != "none":
        print(f"wakes by reason: {wakes or 'none'}; parks {report['parks']}, resumes "
              f"{report['resumes']}; worst PING lateness {report['late_ping_ms_max']:.1f} ms",
              file=out)
    if report["request_ms_max"] is not None:
        print(f"request round trips: median {report['request_ms_median']:.1f} ms, max "
              f"{report['request_ms_max']:.1f} ms (resume included)", file=out)
    for error in report.get("connect_errors", []) + report.get("request_errors", []):
        print(f"  error: {error}", file=out)
    print(f"verdict: {report['verdict']}", file=out)


@contextlib.contextmanager
def _event_loop(name: str) -> Iterator[asyncio.Runner]:
    if name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            yield runner
    else:
        with asyncio.Runner() as runner:
            yield runner


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except DemoUsageError as exc:
        print(f"quic-offload demo: error: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        with _event_loop(options.loop) as runner:
            report = runner.run(run_demo(options, out))
    except KeyboardInterrupt:
        print("quic-offload demo: interrupted", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"quic-offload demo: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    if options.json:
        json.dump(report, out)
        out.write("\n")
    else:
        _print_report(report, out)
    out.flush()
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="show idle QUIC connections kept alive without waking the application",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  quic-offload demo\n"
               "  quic-offload demo --offload none        # the same run without offload\n"
               "  quic-offload demo --serve 0.0.0.0:4433 --duration 0\n"
               "  quic-offload demo --connect 192.0.2.7:4433 --insecure\n"
               "  quic-offload demo --connect quic.example:443 --alpn h3 --requests 0")
    where = parser.add_argument_group("where it runs (default: server and clients here)")
    where.add_argument("--serve", metavar="HOST:PORT",
                       help="run only the offloaded echo server (port 0: any free port)")
    where.add_argument("--connect", metavar="HOST:PORT",
                       help="run only the offloaded clients, against this server")
    where.add_argument("--offload", choices=OFFLOAD_CHOICES, default=None,
                       help="which ends the engine keeps: both (default in-process), server "
                            "(default with --serve), client (default with --connect), or "
                            "none to watch plain aioquic connections die at the idle timeout")
    where.add_argument("--alpn", default=DEMO_ALPN, metavar="ALPN",
                       help=f"ALPN to offer or accept (default: {DEMO_ALPN})")
    where.add_argument("--cert", metavar="FILE", help="server certificate (PEM; with --key); "
                       "default: a throwaway self-signed one")
    where.add_argument("--key", metavar="FILE", help="server private key (PEM)")
    where.add_argument("--ca", metavar="FILE", help="CA file to verify the server with")
    where.add_argument("--insecure", action="store_true",
                       help="do not verify the server's certificate (self-signed test peers)")
    run_group = parser.add_argument_group("the run")
    run_group.add_argument("--connections", "-n", type=_count(1), default=20,
                           metavar="N",
                           help="client connections to open (default: 20)")
    run_group.add_argument("--duration", type=_seconds(0, inclusive=True), default=None,
                           metavar="S",
                           help="seconds to run (default: 15; with --serve, 0 runs until "
                                "Ctrl-C)")
    run_group.add_argument("--interval", type=_seconds(0, inclusive=False), default=1.0,
                           metavar="S",
                           help="keepalive interval while parked, seconds (default: 1)")
    run_group.add_argument("--park-after", type=_seconds(0, inclusive=True), default=1.0,
                           metavar="S",
                           help="idle seconds before a connection is parked (default: 1)")
    run_group.add_argument("--idle-timeout", type=_seconds(0, inclusive=False), default=3.0,
                           metavar="S",
                           help="QUIC idle timeout, seconds (default: 3)")
    run_group.add_argument("--requests", type=_count(0), default=3,
                           metavar="N",
                           help="echo requests sent halfway through on random connections "
                                "(default: 3; 0 for none, e.g. against a peer that does not "
                                "echo)")
    run_group.add_argument("--seed", type=int, default=None,
                           metavar="N",
                           help="seed for picking the request connections")
    engine = parser.add_argument_group("engine and output")
    engine.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                        help="ring backend (default: auto -- io_uring when the kernel allows)")
    engine.add_argument("--loop", choices=LOOP_CHOICES, default=None,
                        help="event loop (default: uvloop when installed)")
    engine.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of the report (the live "
                             "line goes to stderr)")
    parser.set_defaults(func=run)

