"""One party's run: check inputs, connect, agree keys, execute, write outputs — or stop everyone."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.runtime.diagnostics import InputDataError, NetworkError, RuntimeFailure, UsageErr, VeilError

from . import bytecode, fixedpoint
from .framing import DEFAULT_MAX_PAYLOAD
from .inputs import commit_outputs, load_input
from .prg import agree_keys
from .tcp_mesh import HEARTBEAT_TIMEOUT
from .protocols import get_protocol
from .protocols.base import Context
from .vm import VM, Stats


@dataclass
class PartyResult:
    outputs: dict[str, np.ndarray]
    stats: Stats


def input_paths(manifest: dict, party: str, overrides: dict[str, str]) -> dict[str, str]:
    """Each of the party's inputs mapped to a file: given on the command line, else the default."""
    paths = {}
    known = [d["name"] for d in manifest["inputs"].get(party, [])]
    for name in overrides:
        if name not in known:
            raise UsageErr(f"--input {party}.{name}: {party} has no input named {name!r}", None,
                           f"{party}'s inputs: {', '.join(known) or 'none'}")
    for d in manifest["inputs"].get(party, []):
        name = d["name"]
        if name in overrides:
            paths[name] = overrides[name]
            continue
        default = manifest.get("defaults", {}).get(f"{party}.{name}")
        if default is None:
            raise InputDataError(f"party {party}, input {name!r}: no file given and the program names no default",
                                 hint=f"pass --input {name}=PATH (veil local: --input {party}.{name}=PATH)")
        paths[name] = os.path.join(manifest["source_dir"], default)
    return paths


def load_party_inputs(manifest: dict, party: str, overrides: dict[str, str]) -> dict[str, np.ndarray]:
    """Read, check and encode every input of a party before any communication."""
    F = manifest["frac_bits"]
    paths = input_paths(manifest, party, overrides)
    out = {}
    for d in manifest["inputs"].get(party, []):
        arr = load_input(paths[d["name"]], tuple(d["shape"]), d["dtype"], head=d["head"], party=party,
                         name=d["name"], frac_bits=F)
        out[d["name"]] = fixedpoint.encode(arr, d["dtype"], F)
    return out


def decode_outputs(raw: dict[str, tuple[np.ndarray, str, int]]) -> dict[str, np.ndarray]:
    return {name: fixedpoint.decode(ring, dtype, scale) for name, (ring, dtype, scale) in raw.items()}


async def execute(manifest: dict, code: list, party: str, mesh: Any, inputs: dict[str, np.ndarray],
                  trace: str | None = None) -> PartyResult:
    """Agree on keys with the peers and run the bytecode over an open mesh (`trace`: write the
    run's Chrome-trace timeline to that file, also when the run fails)."""
    peers = [p for p in manifest["parties"] if p != party]
    prg = await agree_keys(party, peers, mesh)
    protocol = get_protocol(manifest["protocol"])
    ctx = Context(party, manifest["compute"], prg)
    if trace is None:
        vm = VM(party, protocol, ctx, mesh, inputs)
    else:
        from .trace import TracedVM, Tracer

        vm = TracedVM(party, protocol, ctx, mesh, inputs, tracer=Tracer(party, manifest["parties"].index(party)))
    before = sum(mesh.bytes_sent.values())  # the program's own traffic, not the key agreement
    try:
        raw = await vm.run(code)
    except BaseException:
        if trace is not None:
            try:
                _write_trace(vm, trace, manifest)  # what happened up to the failure
            except RuntimeFailure:
                pass  # the run's own error is the one to report
        raise
    if trace is not None:
        _write_trace(vm, trace, manifest)
    vm.stats.bytes_sent = sum(mesh.bytes_sent.values()) - before
    return PartyResult(decode_outputs(raw), vm.stats)


def _write_trace(vm: Any, path: str, manifest: dict) -> None:
    """The party's timeline file (its folder made if missing), with what it measured beside the spans."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        vm.tracer.write(path, program=manifest.get("program"), rounds=vm.stats.rounds,
                        seconds=round(vm.stats.seconds, 6))
    except OSError as err:
        raise RuntimeFailure(f"{vm.party} cannot write its trace file {path}: {err.strerror or err}") from None


def hello(manifest: dict, party: str, session: str) -> dict:
    """What a party says of itself at the handshake; every field but the name must match the peer's.
    The program hash was recomputed at load; the frame bound comes from the manifest's cost, which
    the hash does not cover, so it is compared too (an edit raising it on one party is refused)."""
    return {"veil": bytecode.VERSION, "program": manifest["hash"], "session": session, "party": party,
            "frame_bound": message_limit(manifest)}


async def run_over_network(manifest: dict, code: list, party: str, addresses: dict, inputs: dict[str, np.ndarray],
                           *, session: str = "default", connect_timeout: float = 60.0,
                           io_timeout: float = 600.0, ssl_pair: tuple | None = None,
                           shape: Any = None, trace: str | None = None,
                           heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> PartyResult:
    """Connect to every peer and run (`inputs`: checked and encoded beforehand); on any failure (or
    SIGINT/SIGTERM) tell the peers, so nobody hangs. Returns only once every party has finished the
    program (the all-done exchange)."""
    from .net import Mesh, connect_mesh

    peers = [p for p in manifest["parties"] if p != party]
    ssl_server, ssl_client = ssl_pair or (None, None)
    with _StopOnSignal(party) as stop:
        stop.mesh = mesh = Mesh(party, peers, io_timeout, heartbeat_timeout)
        try:
            await connect_mesh(party, peers, addresses, hello(manifest, party, session),
                               connect_timeout=connect_timeout,
                               io_timeout=io_timeout, ssl_server=ssl_server, ssl_client=ssl_client,
                               max_payload=message_limit(manifest), mesh=mesh)
        except asyncio.CancelledError:
            raise stop.failure() from None
        except VeilError:
            if stop.received is not None:
                raise stop.failure() from None
            raise
        mesh.shape(shape)  # WAN emulation (a veil.runtime.shaping.LinkShape), or None
        try:
            result = await execute(manifest, code, party, mesh, inputs, trace=trace)
            await mesh.finish()  # outputs are written only once every party has finished
            return result
        except VeilError as err:
            if stop.received is not None:
                err = stop.failure()
            await stop.settle()
            await mesh.abort(_one_line(err))
            raise err from None
        except asyncio.CancelledError:
            err = stop.failure()
            await mesh.abort(err.message)
            raise err from None
        except Exception as err:
            await mesh.abort(f"internal error at {party}: {err}")
            raise RuntimeFailure(f"{party} failed: {type(err).__name__}: {err}") from err
        finally:
            await mesh.close()


class _StopOnSignal:
    """SIGINT/SIGTERM stop the party cleanly: its peers are told (abort), so they stop too.

    Before the mesh exists the running task is cancelled; afterwards the mesh is aborted, which
    fails the party's pending and later sends and receives (a cancellation could be lost in a
    receive that completes at the same moment)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, party: str):
        self.party = party
        self.received: int | None = None
        self.installed: list[int] = []
        self.mesh: Any = None
        self.aborting: asyncio.Future | None = None

    def __enter__(self) -> "_StopOnSignal":
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in self.SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig, task)
                self.installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or a platform without signal handlers
        return self

    def _on_signal(self, sig: int, task: asyncio.Task | None) -> None:
        if self.received is not None:
            return
        self.received = sig
        if self.mesh is not None:
            self.aborting = asyncio.ensure_future(self.mesh.abort(self.failure().message))
        elif task is not None:
            task.cancel()

    async def settle(self) -> None:
        """Let an abort started by a signal finish sending before the mesh is closed."""
        if self.aborting is not None:
            await asyncio.gather(self.aborting, return_exceptions=True)

    def failure(self) -> RuntimeFailure:
        """The error a stopped party reports (exit status 128 + signal number, like a shell)."""
        if self.received is None:
            raise asyncio.CancelledError()  # cancelled by someone else: not ours to explain
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()  # the cancellation was ours and is handled: later timeouts must work normally
        name = signal.Signals(self.received).name
        err = RuntimeFailure(f"{self.party} was stopped by {name}")
        err.exit_status = 128 + int(self.received)
        return err

    def __exit__(self, *exc) -> None:
        loop = asyncio.get_running_loop()
        for sig in self.installed:
            loop.remove_signal_handler(sig)


def _one_line(err: VeilError) -> str:
    """The abort reason sent to the peers (they add the line they were running themselves)."""
    text = re.sub(r" \(while running [^()]+\)$", "", err.message)
    return text if err.span is None else f"{err.span}: {text}"


def check_output_dir(out_dir: str) -> None:
    """Before any communication: the output folder can be created and written (else the party
    would lose its results after the whole computation)."""
    made = not os.path.isdir(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".veil-check-"):
            pass
        if made:
            os.rmdir(out_dir)  # written at the end, with the outputs: nothing is left by a failed run
    except OSError as err:
        raise UsageErr(f"--output-dir {out_dir}: cannot write there ({err.strerror or err})",
                       hint="choose a folder this party can write, or fix its permissions") from None


def write_outputs(outputs: dict[str, np.ndarray], out_dir: str) -> list[str]:
    """All of a party's outputs, atomically: all or nothing (no folder for a party without outputs)."""
    if not outputs:
        return []
    os.makedirs(out_dir, exist_ok=True)
    files = {os.path.join(out_dir, f"{name}.npy"): arr for name, arr in outputs.items()}
    commit_outputs(files)
    return sorted(files)


def run_party(build_dir: str, party: str, config_path: str, overrides: dict[str, str], out_dir: str, *,
              session: str = "default", connect_timeout: float = 60.0, io_timeout: float = 600.0,
              shape: Any = None, trace: str | None = None, insecure: bool = False,
              heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> PartyResult:
    """`veil run`: one party of a compiled program over the network (`shape`: WAN emulation,
    `trace`: a Chrome-trace file of the run, `insecure`: plaintext off loopback)."""
    from .config import load_parties
    from .net import install_event_loop_policy
    from .ring import retain_freed_memory

    install_event_loop_policy()
    retain_freed_memory()   # this process is one party: large kernels' freed arrays are reused, not faulted afresh
    config, ssl_pair, parties, secured = None, None, None, False
    try:   # everything this party can find wrong on its own, before any communication
        manifest, files = load_build_dir(build_dir)
        parties = manifest["parties"]
        if party not in parties:
            raise UsageErr(f"--party {party}: the program's parties are {', '.join(parties)}")
        if manifest["outputs"].get(party):
            check_output_dir(out_dir)
        config = load_parties(config_path, parties)
        ssl_pair, secured = _ssl_pair(config, party, insecure), True
        code = bytecode.decode(files[party])["code"]
        inputs = load_party_inputs(manifest, party, overrides)
    except VeilError as err:
        announce_before_start(party, parties, (config, ssl_pair) if secured else None, err, config_path, insecure)
        raise
    result = asyncio.run(run_over_network(manifest, code, party, config.addresses, inputs, session=session,
                                          connect_timeout=connect_timeout, io_timeout=io_timeout,
                                          ssl_pair=ssl_pair, shape=shape, trace=trace,
                                          heartbeat_timeout=heartbeat_timeout))
    write_outputs(result.outputs, out_dir)
    return result


def _ssl_pair(config: Any, party: str, insecure: bool) -> tuple | None:
    """(server, client) TLS contexts of `party`, or None for plaintext (loopback or --insecure)."""
    from .config import transport_security

    if not transport_security(config, party, insecure):
        return None
    from .tls import contexts

    return contexts(*config.for_party(party))


def announce_before_start(party: str, parties: list[str] | None, transport: tuple | None, err: VeilError,
                          config_path: str, insecure: bool) -> None:
    """Tell every peer that answers within a few seconds that this party cannot start, and why
    (else they wait for their connect timeout). Needs the parties file and, with TLS, this party's
    certificate: without them (or when they are what failed) nobody can be told. `transport`:
    (parties file, TLS contexts) if already loaded."""
    from .announce import announce_failure
    from .config import load_parties

    if parties is not None and party not in parties:
        return   # not a party of this program: nobody would believe it
    if transport is None:
        try:
            config = load_parties(config_path)
            if party not in config.addresses:
                return
            transport = (config, _ssl_pair(config, party, insecure))
        except VeilError:
            return
    config, ssl_pair = transport
    if party not in config.addresses:
        return
    peers = [p for p in (parties or config.addresses) if p != party and p in config.addresses]
    asyncio.run(announce_failure(party, peers, config.addresses, _one_line(err), ssl_pair[1] if ssl_pair else None))


def load_build(build_dir: str) -> tuple[dict, dict[str, bytes]]:
    """Read a build directory: manifest.json and each party's bytecode file, each file checked
    against its recorded digest and the program hash recomputed (a corrupted build never runs)."""
    path = os.path.join(build_dir, "manifest.json")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    if not isinstance(manifest, dict):
        raise ValueError("manifest.json does not hold a JSON object")
    missing = [k for k in (*bytecode.CORE_KEYS, "veil", "hash", "files", "sha256") if k not in manifest]
    if missing:
        raise ValueError(f"manifest.json has no {', '.join(repr(k) for k in missing)}")
    files = {}
    for party, name in manifest["files"].items():
        with open(os.path.join(build_dir, name), "rb") as fh:
            files[party] = fh.read()
        if bytecode.file_digest(files[party]) != manifest["sha256"].get(party):
            raise IntegrityError(f"{os.path.join(build_dir, name)} is corrupted or was modified: its SHA-256 "
                                 "is not the one the compiler recorded in manifest.json")
    bound = manifest.get("cost", {}).get("max_message_bytes") if isinstance(manifest.get("cost"), dict) else None
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 0:
        raise ValueError("manifest.json has no valid cost.max_message_bytes (the bound on a message)")
    core = {k: manifest[k] for k in bytecode.CORE_KEYS}
    if bytecode.program_hash(files, core) != manifest["hash"]:
        raise IntegrityError(f"{path} was modified: its program hash does not match its contents")
    return manifest, files


def message_limit(manifest: dict) -> int:
    """The largest message a peer of this program may send: the compiler's bound on one round's
    message, with a margin (a frame announcing more is refused before it is read)."""
    bound = manifest.get("cost", {}).get("max_message_bytes")
    return int(bound * 1.25) + (1 << 20) if isinstance(bound, int) else DEFAULT_MAX_PAYLOAD


class IntegrityError(ValueError):
    """A build file whose contents are not what the compiler wrote."""


def load_build_dir(build_dir: str) -> tuple[dict, dict]:
    """(manifest, {party: bytecode}) of a build folder, or a usage error saying what is wrong."""
    if not os.path.isdir(build_dir):
        raise UsageErr(f"{build_dir}: no such build directory", None, "compile first: veil compile PROG.mpc -o DIR")
    try:
        return load_build(build_dir)
    except FileNotFoundError as err:
        raise UsageErr(f"{build_dir} is not a veil build directory ({err.filename} is missing)", None,
                       "compile first: veil compile PROG.mpc -o DIR") from None
    except IntegrityError as err:
        raise UsageErr(str(err), None, "recompile the program, and copy the build directory whole") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise UsageErr(f"{build_dir}: unreadable build ({err})", None, "recompile with this veil") from None
