"""The `veil` command line (LANGUAGE.md §11). Every user mistake ends in a message, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

# One veil process is one party (or one compile) and keeps one core busy at most: OpenBLAS's extra
# threads only spin-wait, here ~37 ms of CPU per process at start-up and ~0.45 ms per LR step (three
# parties), taken from the other parties on shared cores (docs/perf.md). Set before numpy loads
# OpenBLAS; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread setting above)

from veil.runtime.diagnostics import UsageErr, VeilError
from veil.runtime.shaping import shape_from_args


def _defines(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageErr(f"-D {item}: expected NAME=VALUE", None, "e.g. -D EPOCHS=2")
        out[name] = value
    return out


def _front_end(args, path: str):
    """The optimized IR of a .mpc program, or the program a .ir file holds."""
    from veil.compiler.driver import is_ir, load_program

    if not os.path.exists(path):
        raise UsageErr(f"{path}: no such file")
    if is_ir(path):
        given = [flag for flag, on in (("-D", args.define), ("--protocol", args.protocol),
                                       ("--frac-bits", args.frac_bits is not None),
                                       ("-O0", not getattr(args, "optimize", True))) if on]
        if given:
            raise UsageErr(f"{path} is IR text: {', '.join(given)} cannot apply (params, protocol, "
                           "fractional bits and optimization were fixed when it was made)", None,
                           "pass them when compiling the .mpc program with --emit-ir")
        return load_program(path)
    return load_program(path, _defines(args.define), frac_bits=args.frac_bits,
                        protocol=args.protocol, optimize=getattr(args, "optimize", True))


def _compile(args, path: str):
    """A .mpc program or a .ir file compiled to bytecode."""
    import time

    from veil.compiler.disclosure import raw_input_notes
    from veil.compiler.driver import back_end

    t0 = time.perf_counter()
    c = back_end(_front_end(args, path), t0)
    for note in raw_input_notes(c.prog):  # e.g. a data owner's raw data shared whole
        print(note.format(), file=sys.stderr)
    return c


def default_build_dir(path: str) -> str:
    return os.path.join("build", os.path.splitext(os.path.basename(path))[0])


# ---- commands --------------------------------------------------------------------------------
def cmd_compile(args) -> int:
    from veil.compiler.driver import write_build

    c = _compile(args, args.program)
    out = args.output or default_build_dir(args.program)
    write_build(c, out)
    report = dict(c.cost.as_dict(), compile_seconds=round(c.compile_seconds, 4))
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    if args.emit_ir:
        print(c.ir_text(), end="")
    if args.emit_lowered:
        from veil.compiler.lowered_text import format_lowered

        print(format_lowered(c.prog), end="")
    if args.disclosure:
        from veil.compiler.disclosure import disclosure, format_disclosure

        print(format_disclosure(disclosure(c.prog)), end="")
    if args.stats:
        print(format_cost(report))
    print(f"wrote {out}/ (manifest.json, {', '.join(sorted(c.manifest['files'].values()))})", file=sys.stderr)
    return 0


def format_cost(report: dict) -> str:
    """The cost report as a readable table."""
    lines = ["cost (whole run)", f"  rounds           {report['rounds']}"]
    for p, b in report["bytes_sent"].items():
        lines.append(f"  bytes sent {p:<8}{b:>14,}")
    lines += [f"  multiplications  {report['multiplications']:,}", f"  truncations      {report['truncations']:,}",
              f"  comparisons      {report['comparisons']:,}"]
    for p, b in report.get("peak_memory_bytes", {}).items():
        lines.append(f"  peak memory {p:<7}{b:>14,} bytes")
    for lp in report["loops"]:
        lines.append(f"  loop at line {lp['line']}: {lp['trips']} trips x {lp['rounds']} rounds")
    for c in report.get("calls", []):
        lines.append(f"  {c['call']}() at {c['at']}: {c['rounds']:,} rounds with its kernels in flight "
                     f"({c['times']:,} calls)")
    if "compile_seconds" in report:
        lines.append(f"  compile time     {report['compile_seconds']:.3f} s")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from veil.runtime.session import run_party

    overrides = {}
    for item in args.input:
        name, sep, path = item.partition("=")
        if not sep:
            raise UsageErr(f"--input {item}: expected NAME=PATH")
        overrides[name] = path
    out = args.output_dir or os.path.join("out", args.party)
    shape = shape_from_args(args.rtt, args.bandwidth)
    from veil.runtime.progress import follower_for_run
    from veil.runtime.vm import FOLLOW

    FOLLOW.set(follower_for_run(args.party, quiet=args.quiet, events=args.events))
    result = run_party(args.build, args.party, args.config, overrides, out, session=args.session,
                       connect_timeout=args.connect_timeout, io_timeout=args.timeout, shape=shape,
                       trace=args.trace, insecure=args.insecure, heartbeat_timeout=args.heartbeat_timeout)
    stats = {"party": args.party, "rounds": result.stats.rounds, "bytes_sent": result.stats.bytes_sent,
             "messages": result.stats.messages, "seconds": round(result.stats.seconds, 4)}
    if args.stats:  # one JSON line on stderr (veil local reads it: runtime.local.read_stats)
        print(json.dumps(stats), file=sys.stderr)
    for name in sorted(result.outputs):
        print(f"{args.party}: wrote {os.path.join(out, name + '.npy')}")
    return 0


def cmd_local(args) -> int:
    from veil.compiler.driver import write_build
    from veil.runtime.local import check_input_names, failure_summary, run_all, split_inputs
    from veil.runtime.session import load_build_dir
    from veil.runtime.trace import trace_path_for

    target = args.program
    shape = shape_from_args(args.rtt, args.bandwidth)  # bad values fail before anything is compiled
    if os.path.isdir(target):
        if args.define or args.protocol or args.frac_bits is not None:
            raise UsageErr(f"{target} is already compiled: -D, --protocol and --frac-bits apply only to a .mpc program",
                           None, "recompile with veil compile, or pass the .mpc file")
        build_dir = target
    else:
        if not os.path.exists(target):
            raise UsageErr(f"{target}: no such file or build directory")
        c = _compile(args, target)
        build_dir = default_build_dir(target)
        write_build(c, build_dir)
    manifest, _files = load_build_dir(build_dir)
    parties = manifest["parties"]
    inputs = split_inputs(args.input, parties)
    check_input_names(inputs, manifest)
    out_dir = args.output_dir or os.path.join("out", os.path.splitext(manifest["program"])[0])
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the parties are stopped with us
    from veil.runtime.progress import LocalFollow

    follow = LocalFollow(parties, manifest["compute"], args.quiet)  # live values, one progress line
    per_party = {p: follow.args[p] + (["--trace", trace_path_for(args.trace, p)] if args.trace else [])
                 for p in parties}
    try:
        runs = run_all(build_dir, parties, inputs, out_dir, connect_timeout=args.connect_timeout,
                       io_timeout=args.timeout, heartbeat_timeout=args.heartbeat_timeout,
                       extra_args=shape.cli_args() if shape else None,
                       per_party_args=per_party, follow=follow)
    finally:
        follow.finish()
    if any(r.code != 0 for r in runs):
        raise failure_summary(runs)
    print_outputs(manifest, out_dir)
    if args.stats:
        print(format_measured(runs, manifest))
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM unwinds `veil local` like an exception, so its cleanup stops every party."""
    raise SystemExit(128 + signum)


def print_outputs(manifest: dict, out_dir: str) -> None:
    for party in manifest["parties"]:
        for o in manifest["outputs"].get(party, []):
            path = os.path.join(out_dir, party, o["name"] + ".npy")
            value = np.load(path)
            text = np.array2string(np.squeeze(value) if value.size > 1 else value.reshape(()),
                                   precision=4, suppress_small=True, max_line_width=100, threshold=40)
            print(f"{party}.{o['name']} {list(value.shape)} = {text}")


def format_measured(runs, manifest) -> str:
    lines = ["measured", f"  {'party':<10}{'rounds':>8}{'bytes sent':>14}{'seconds':>10}"]
    for r in runs:
        s = r.stats or {}
        lines.append(f"  {r.party:<10}{s.get('rounds', '?'):>8}{s.get('bytes_sent', 0):>14,}{s.get('seconds', 0):>10.2f}")
    pred = manifest["cost"]
    lines.append("  predicted by the compiler:")
    for r in runs:
        lines.append(f"  {r.party:<10}{pred['party_rounds'].get(r.party, 0):>8}{pred['bytes_sent'].get(r.party, 0):>14,}")
    lines.append(f"  rounds: {pred['rounds']} scheduled, {pred.get('critical_rounds', pred['rounds'])} on the critical path"
                 " (the one-way delays the slowest party waits through)")
    return "\n".join(lines)


def cmd_emulate(args) -> int:
    from veil.compiler.driver import declarations
    from veil.compiler.emulate import emulate
    from veil.runtime.local import split_inputs
    from veil.runtime.session import decode_outputs, load_party_inputs, write_outputs

    prog = _front_end(args, args.program)  # no lowering: emulation runs ops the protocol cannot yet
    manifest = declarations(prog)
    groups = split_inputs(args.input, prog.parties)
    ring_inputs = {}
    for party in prog.parties:
        for name, arr in load_party_inputs(manifest, party, groups.get(party, {})).items():
            ring_inputs[(party, name)] = arr
    outs = emulate(prog, ring_inputs)
    out_dir = args.output_dir or os.path.join("out", os.path.splitext(os.path.basename(args.program))[0] + "-emulated")
    dtypes = {o.name: (o.dtype, prog.frac_bits if o.dtype == "fix" else 0) for o in prog.outputs}
    decoded = {p: decode_outputs({n: (v, *dtypes[n]) for n, v in o.items()}) for p, o in outs.items()}
    for party, values in decoded.items():
        if values:
            write_outputs(values, os.path.join(out_dir, party))
    print_outputs(manifest, out_dir)
    return 0


def cmd_inspect(args) -> int:
    from veil.runtime import bytecode
    from veil.runtime.session import load_build_dir

    manifest, files = load_build_dir(args.build)
    parties = [args.party] if args.party else manifest["parties"]
    for p in parties:
        if p not in files:
            raise UsageErr(f"--party {p}: the program's parties are {', '.join(manifest['parties'])}")
        code = bytecode.decode(files[p])["code"]
        print(f"== {p} ({len(files[p])} bytes, program {manifest['hash'][:16]}) ==")
        print("\n".join(bytecode.disassemble(code)))
    return 0


def cmd_keygen(args) -> int:
    from veil.runtime.tls import VALID_DAYS, keygen

    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    if len(parties) < 2:
        raise UsageErr("--parties takes at least two names, e.g. --parties alice,bob,carol")
    keygen(parties, args.output)
    print(f"wrote CA and certificates for {', '.join(parties)} to {args.output}/ (valid {VALID_DAYS} days); "
          f"give each party ca.pem, its own .pem and .key; keep ca.key offline")
    return 0


# ---- argument parsing ------------------------------------------------------------------------
def _positive(text: str) -> float:
    """A number of seconds > 0 (argparse reports anything else as a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _common_compile(p: argparse.ArgumentParser) -> None:
    p.add_argument("-D", dest="define", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param")
    p.add_argument("--protocol", help='override the protocol, e.g. "rep3(alice, bob, carol)"')
    p.add_argument("--frac-bits", type=int, help="fractional bits of fix values (default: the program's `precision` line, else 16)")


def _network_emulation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rtt", metavar="TIME",
                   help="emulate a WAN: delay every message by half this round-trip time (e.g. 40ms, 0.04s)")
    p.add_argument("--bandwidth", metavar="RATE",
                   help="emulate a WAN: pace every link to this rate (e.g. 352mbit, 1gbit)")
    p.add_argument("--trace", metavar="FILE",
                   help="write a Chrome-trace timeline (Perfetto) of the run; veil local: one per party, "
                        "FILE with the party's name inserted (trace.alice.json)")


def _following(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true",
                   help="no progress line and no live values (the history files are still written)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="veil", description="veil: an MPC compiler and runtime")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a .mpc program (or its .ir text) to per-party bytecode")
    p.add_argument("program", help="a .mpc program, or IR text (.ir) printed by --emit-ir")
    p.add_argument("-o", "--output", help="build directory (default build/<prog>/)")
    _common_compile(p)
    p.add_argument("--stats", action="store_true", help="print the cost table")
    p.add_argument("--json", action="store_true", help="print the cost as JSON, nothing else")
    p.add_argument("--emit-ir", action="store_true", help="print the optimized IR (what compile X.ir reads)")
    p.add_argument("--emit-lowered", action="store_true",
                   help="print the scheduled protocol program, its rounds marked")
    p.add_argument("--disclosure", action="store_true",
                   help="print what each party learns and what leaves it as shares")
    p.add_argument("-O0", action="store_false", dest="optimize", help="turn the optimizer off")
    p.set_defaults(fn=cmd_compile)

    p = sub.add_parser("run", help="run one party of a compiled program over the network")
    p.add_argument("build")
    p.add_argument("--party", required=True)
    p.add_argument("--config", required=True, help="parties file (TOML, or TF Encrypted's JSON)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--output-dir")
    p.add_argument("--session", default="default", help="session id; every party must use the same")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a peer's message")
    p.add_argument("--heartbeat-timeout", type=_positive, default=30.0, metavar="SECONDS",
                   help="a peer silent this long (frozen, stopped, cut off) stops the run (default 30)")
    p.add_argument("--insecure", action="store_true",
                   help="allow plaintext, unauthenticated connections off loopback (prints a warning)")
    p.add_argument("--stats", action="store_true",
                   help="print measured rounds, bytes and seconds as one JSON line on stderr")
    _network_emulation(p)
    _following(p)
    p.add_argument("--events", choices=("values", "all"), help=argparse.SUPPRESS)  # from veil local
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("local", help="run every party on this machine over localhost")
    p.add_argument("program", help="a .mpc program, a .ir file or a build directory")
    _common_compile(p)
    p.add_argument("--input", action="append", default=[], metavar="PARTY.NAME=PATH")
    p.add_argument("--output-dir")
    p.add_argument("--stats", action="store_true", help="print measured rounds, bytes and time per party")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="seconds for the parties to connect")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a party waits for a peer's message")
    p.add_argument("--heartbeat-timeout", type=_positive, default=30.0, metavar="SECONDS",
                   help="each party: a peer silent this long (frozen, stopped, cut off) stops the run (default 30)")
    _network_emulation(p)
    _following(p)
    p.set_defaults(fn=cmd_local)

    p = sub.add_parser("emulate", help="run the program in clear with the same fixed-point semantics")
    p.add_argument("program", help="a .mpc program or a .ir file")
    _common_compile(p)
    p.add_argument("--input", action="append", default=[], metavar="PARTY.NAME=PATH")
    p.add_argument("--output-dir")
    p.set_defaults(fn=cmd_emulate)

    p = sub.add_parser("inspect", help="print a party's bytecode")
    p.add_argument("build")
    p.add_argument("--party")
    p.set_defaults(fn=cmd_inspect)

    p = sub.add_parser("keygen", help="make TLS keys and certificates for a deployment")
    p.add_argument("--parties", required=True, help="the party names, e.g. alice,bob,carol")
    p.add_argument("-o", "--output", default="keys", help="folder for ca.pem and each party's .pem/.key")
    p.set_defaults(fn=cmd_keygen)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except VeilError as err:
        print(err.format(), file=sys.stderr)
        return err.exit_status
    except OSError as err:  # e.g. an output folder that cannot be written
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
