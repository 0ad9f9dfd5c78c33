"""veil's Python API, for scripts and notebooks (docs/api.md).

Compile a program — a `.mpc` path, program text, or a Python function whose body is written in the
veil language (`@program`) — then emulate it in clear or run it with every party, numpy arrays in,
`{party: {output name: numpy array}}` out; read its cost report, IR text and build directory.

    from veil.runtime import api
    c = api.compile("programs/fraud_detection.mpc", {"N": 256})
    out = api.run(c)                     # in this process; processes=True for one process per party
    out["alice"]["w"]                    # a numpy array

Every user mistake raises a VeilError subclass (veil.runtime.diagnostics) whose message names the
spot: a compile error its file:line:col, a bad input its party and name.
"""
from __future__ import annotations

import ast as pyast
import asyncio
import concurrent.futures
import dataclasses
import functools
import inspect
import keyword
import linecache
import math
import os
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from veil.compiler import driver
from veil.compiler.emulate import emulate as _emulate_ir
from veil.compiler.ir import Program
from veil.compiler.lower import CostReport
from veil.runtime.diagnostics import ErrorList, Span, UsageErr, VeilError, register_source

from . import fixedpoint
from .api_inputs import Inputs, InputValue, encode_inputs, load_inputs  # noqa: F401  (InputValue: docs)

__all__ = ["Compiled", "Outputs", "ProgramFunction", "compile", "emulate", "front_end", "run", "program"]

#: A param override: its own type, or a string as on the command line (-D N=8).
ParamValue = int | float | bool | str

T = TypeVar("T")


class Outputs(dict):
    """{party: {output name: numpy array}}, every party present (empty if it receives nothing).

    `stats` holds what each party measured in a run ({party: {"rounds", "bytes_sent", ...}}); it is
    empty after an emulation."""

    def __init__(self, data: Mapping[str, dict[str, np.ndarray]], stats: dict[str, dict] | None = None):
        super().__init__(data)
        self.stats: dict[str, dict] = stats or {}


@dataclasses.dataclass
class Compiled(driver.Compiled):
    """A compiled program: the IR (`prog`), each party's bytecode (`files`), the `manifest` and the
    `cost` report, with methods to emulate, run, print and save it."""

    def emulate(self, inputs: Inputs | None = None, *, check_overflow: bool = True) -> Outputs:
        """Run in clear with the protocols' fixed-point semantics (see api.emulate)."""
        return emulate(self, inputs, check_overflow=check_overflow)

    def run(self, inputs: Inputs | None = None, *, processes: bool = False, timeout: float = 600.0) -> Outputs:
        """Run the MPC with every party (see api.run)."""
        return run(self, inputs, processes=processes, timeout=timeout)

    def ir(self) -> str:
        """The optimized IR as text (what `veil compile --emit-ir` prints)."""
        return self.ir_text()

    def save(self, build_dir: str | os.PathLike) -> str:
        """Write the build directory (manifest.json + one bytecode file per party) for `veil run`."""
        path = os.fspath(build_dir)
        driver.write_build(self, path)
        return path


# ---- compiling ---------------------------------------------------------------------------------
def compile(program: str | os.PathLike, params: Mapping[str, ParamValue] | None = None, *,
            file: str | None = None, frac_bits: int | None = None, protocol: str | None = None,
            optimize: bool = True) -> Compiled:
    """Compile a `.mpc` file (a path, or a str ending in .mpc), a `.ir` file, or program text.

    `params` override the program's `param`s (like -D); `file` names program text in error messages
    and anchors its imports (default "<string>", the current directory); `protocol` overrides the
    program's protocol line, e.g. "rep3(alice, bob, carol)"; `optimize=False` is -O0. A .ir file
    takes none of these (they were fixed when it was printed)."""
    t0 = time.perf_counter()
    return _wrap(driver.back_end(front_end(program, params, file=file, frac_bits=frac_bits,
                                           protocol=protocol, optimize=optimize), t0))


def front_end(program: str | os.PathLike, params: Mapping[str, ParamValue] | None = None, *,
              file: str | None = None, frac_bits: int | None = None, protocol: str | None = None,
              optimize: bool = True) -> Program:
    """The optimized and expanded IR of a program (arguments as api.compile), not lowered for its protocol:
    what api.emulate runs, so constructs the protocol cannot run yet are accepted."""
    params = _check_params(params)
    path = _program_path(program)
    if path is not None and driver.is_ir(path):
        if params or file or frac_bits is not None or protocol or not optimize:
            raise UsageErr(f"{path} is IR text: params, file, frac_bits, protocol and optimize were fixed "
                           "when it was made", None, "pass them when compiling the .mpc program")
        return driver.load_program(path)
    kw: dict[str, Any] = {"frac_bits": frac_bits, "protocol": protocol, "optimize": bool(optimize)}
    if path is not None:
        return driver.load_program(path, params, **kw)
    if not isinstance(program, str):
        raise UsageErr(f"compile() takes a path or program text, not {type(program).__name__}")
    return driver.front_end(program, file or "<string>", params, **kw)


def _program_path(program: str | os.PathLike) -> str | None:
    """The file to read, or None when `program` is program text."""
    if isinstance(program, os.PathLike):
        path = os.fspath(program)
    elif isinstance(program, str) and "\n" not in program and program.strip().endswith((".mpc", ".ir")):
        path = program.strip()
    else:
        return None
    if not os.path.isfile(path):
        raise UsageErr(f"no such program file: {path}", None, "give a path to a .mpc or .ir file, or the program's text")
    return str(path)


def _check_params(params: Mapping[str, ParamValue] | None) -> dict[str, ParamValue]:
    """Param overrides as a plain dict of names to scalars."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise UsageErr(f"params must be a dict {{name: value}}, not {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(value, (int, float, bool, str, np.integer, np.floating, np.bool_)):
            raise UsageErr(f"param {name}: expected an int, float, bool or str, got {type(value).__name__}")
    return {str(k): v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def _wrap(c: driver.Compiled) -> Compiled:
    """The API's Compiled (with methods) around the driver's."""
    if isinstance(c, Compiled):
        return c
    return Compiled(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)})


def _as_compiled(program: driver.Compiled | str | os.PathLike, params: Mapping[str, ParamValue] | None) -> Compiled:
    """A Compiled for run, compiling a path or text on the way."""
    if isinstance(program, driver.Compiled):
        _no_params(params)
        return _wrap(program)
    return compile(program, params)


def _no_params(params: Mapping[str, ParamValue] | None) -> None:
    if params:
        raise UsageErr("params apply when compiling; this program is compiled already",
                       None, "pass params to api.compile(...)")


# ---- emulating and running ---------------------------------------------------------------------
def emulate(program: driver.Compiled | Program | str | os.PathLike, inputs: Inputs | None = None, *,
            params: Mapping[str, ParamValue] | None = None, check_overflow: bool = True) -> Outputs:
    """Run in clear with the protocols' fixed-point semantics; returns {party: {output: array}}.

    `program` is a Compiled, a Program (api.front_end), or a path/text that goes through the front
    end with `params` (no lowering: constructs the protocol cannot run yet are accepted). With
    check_overflow (the default) a product leaving the range where truncation is exact raises
    OverflowWarning with its source line."""
    if isinstance(program, driver.Compiled):
        _no_params(params)
        prog, manifest = program.prog, program.manifest
    else:
        if isinstance(program, Program):
            _no_params(params)
            prog = program
        else:
            prog = front_end(program, params)
        manifest = driver.declarations(prog)
    enc = encode_inputs(manifest, load_inputs(manifest, inputs))
    ring = {(p, n): v for p, named in enc.items() for n, v in named.items()}
    outs = _emulate_ir(prog, ring, check_overflow=check_overflow)
    return Outputs({p: {n: np.asarray(_decode(prog, p, n, v)) for n, v in outs.get(p, {}).items()}
                    for p in prog.parties})


def _decode(prog: Program, party: str, name: str, ring: np.ndarray) -> np.ndarray:
    """An output's ring elements -> float64 (fix), int64 (int) or bool."""
    dtype = next(o.dtype for o in prog.outputs if o.name == name and party in o.to)
    return fixedpoint.decode(ring, dtype, prog.frac_bits if dtype == "fix" else 0)


def run(program: driver.Compiled | str | os.PathLike, inputs: Inputs | None = None, *,
        params: Mapping[str, ParamValue] | None = None, processes: bool = False,
        timeout: float = 600.0) -> Outputs:
    """Run the MPC with every party; returns {party: {output: array}} (and `.stats` per party).

    By default all parties run in this process over in-memory channels — the same VM, kernels and
    messages as over TCP. processes=True starts one `veil run` process per party over localhost TCP,
    exactly like `veil local`. Inputs are checked here first, so bad data fails before any party
    starts. `timeout` bounds the whole run in seconds."""
    c = _as_compiled(program, params)
    clear = load_inputs(c.manifest, inputs)
    if processes:
        return _run_processes(c, clear, timeout)
    from .inprocess import run_parties

    coro = asyncio.wait_for(run_parties(c.manifest, c.files, encode_inputs(c.manifest, clear)), timeout)
    results = _run_coroutine(coro)
    return Outputs({p: {n: np.asarray(v) for n, v in r.outputs.items()} for p, r in results.items()},
                   {p: dataclasses.asdict(r.stats) for p, r in results.items()})


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from inside a running event loop (Jupyter): then in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _run_processes(c: Compiled, clear: dict[str, dict[str, np.ndarray]], timeout: float) -> Outputs:
    """Every party as its own `veil run` process over localhost TCP (runtime.local)."""
    from .local import failure_summary, run_all, save_inputs

    with tempfile.TemporaryDirectory(prefix="veil-run-") as tmp:
        build_dir = c.save(os.path.join(tmp, "build"))
        paths = save_inputs(tmp, clear)
        out_dir = os.path.join(tmp, "out")
        runs = run_all(build_dir, c.prog.parties, paths, out_dir, timeout=timeout)
        if any(r.code != 0 for r in runs):
            raise failure_summary(runs)
        result = {p: {o["name"]: np.load(os.path.join(out_dir, p, o["name"] + ".npy"))
                      for o in c.manifest["outputs"].get(p, [])} for p in c.prog.parties}
        stats = {r.party: {k: v for k, v in (r.stats or {}).items() if k != "party"} for r in runs}
        return Outputs(result, stats)


# ---- programs written as Python functions ------------------------------------------------------
def program(*, parties: Sequence[str] | str, protocol: str | None = None,
            params: Mapping[str, ParamValue] | None = None, frac_bits: int | None = None,
            optimize: bool = True) -> Callable[[Callable[..., Any]], "ProgramFunction"]:
    """Decorator: the function's body is a veil program (never executed by Python).

    `parties` become the `party` line and `protocol` the `protocol` line (default rep3 of the first
    three parties). Each function parameter becomes a `param` whose value is `params[name]`, else its
    default; other `params` entries become params too. Calls go through .run / .emulate."""
    names = _party_names(parties)
    fixed = _check_params(params)

    def decorate(fn: Callable[..., Any]) -> ProgramFunction:
        return ProgramFunction(fn, names, protocol, fixed, frac_bits, optimize)

    return decorate


def _party_names(parties: Sequence[str] | str) -> list[str]:
    """The decorator's parties as a checked list of names."""
    names = [p.strip() for p in parties.split(",")] if isinstance(parties, str) else list(parties)
    if not names:
        raise UsageErr("@program needs at least one party", None, 'e.g. parties=["alice", "bob", "carol"]')
    for p in names:
        if not isinstance(p, str) or not p.isidentifier() or keyword.iskeyword(p):
            raise UsageErr(f"@program: party names are identifiers, got {p!r}")
    dup = next((p for p in names if names.count(p) > 1), None)
    if dup:
        raise UsageErr(f"@program: party {dup} is listed twice")
    return names


@dataclasses.dataclass(frozen=True)
class _Source:
    """The veil text made from a function, aligned so its lines and columns are the .py file's."""

    text: str
    file: str
    decorator_line: int  # first line of the decorators in the .py file
    last_line: int  # last line of the function body; generated lines come after it
    arg_names: tuple[str, ...]
    arg_defaults: dict[str, Any]


class ProgramFunction:
    """A veil program written as a Python function (made by @program). Compiled lazily, once per
    set of params; use .run(inputs), .emulate(inputs), .compiled, .cost, .ir(), .save(dir)."""

    def __init__(self, fn: Callable[..., Any], parties: list[str], protocol: str | None,
                 params: dict[str, ParamValue], frac_bits: int | None, optimize: bool):
        functools.update_wrapper(self, fn)
        self.name: str = fn.__name__
        self.parties = parties
        self.protocol = protocol
        self.frac_bits = frac_bits
        self.optimize = optimize
        self._src = _function_source(fn)
        if self.name in parties:
            raise UsageErr(f"@program: the function {self.name} has the name of a party", self._decorator_span())
        self.params = self._param_values(params)
        self._text = self._src.text + self._trailer()
        self._cache: dict[tuple, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UsageErr(f"{self.name} is a veil program, not a Python function: it cannot be called",
                       None, f"run it with every party: {self.name}.run(inputs), or in clear: {self.name}.emulate(inputs); "
                       f"change a param with params={{...}}")

    def __repr__(self) -> str:
        return f"<veil program {self.name} ({self._src.file}:{self._src.decorator_line})>"

    # the program
    @property
    def source(self) -> str:
        """The veil program text made from the function (its lines are the .py file's lines)."""
        return self._text

    def compile(self, params: Mapping[str, ParamValue] | None = None, *, protocol: str | None = None,
                frac_bits: int | None = None, optimize: bool | None = None) -> Compiled:
        """Compile (cached) with param overrides and the decorator's settings, or these."""
        return self._cached("compile", params, protocol, frac_bits, optimize)

    def front_end(self, params: Mapping[str, ParamValue] | None = None, *, protocol: str | None = None,
                  frac_bits: int | None = None, optimize: bool | None = None) -> Program:
        """The optimized IR, not lowered (cached; what .emulate runs), arguments as .compile."""
        return self._cached("front_end", params, protocol, frac_bits, optimize)

    def _cached(self, stage: str, params: Mapping[str, ParamValue] | None, protocol: str | None,
                frac_bits: int | None, optimize: bool | None) -> Any:
        over = _check_params(params)
        fb = self.frac_bits if frac_bits is None else frac_bits
        opt = self.optimize if optimize is None else optimize
        key = (stage, tuple(sorted(over.items())), protocol, fb, bool(opt))
        if key not in self._cache:
            fn = compile if stage == "compile" else front_end
            self._cache[key] = self._compile(fn, over, protocol, fb, bool(opt))
        return self._cache[key]

    def _compile(self, fn: Callable[..., T], params: dict[str, ParamValue], protocol: str | None,
                 frac_bits: int, optimize: bool) -> T:
        src = self._src
        try:
            return fn(self._text, params, file=src.file, frac_bits=frac_bits, protocol=protocol,
                      optimize=optimize)
        except VeilError as err:
            raise self._relocate(err) from None
        finally:  # quote the real .py lines in messages from now on, not the generated text
            register_source(src.file, "".join(linecache.getlines(src.file)))

    @property
    def compiled(self) -> Compiled:
        """The program compiled with the decorator's params."""
        return self.compile()

    @property
    def cost(self) -> CostReport:
        """The cost report (rounds, bytes per party, multiplications, ...); .as_dict() for JSON."""
        return self.compiled.cost

    def ir(self, params: Mapping[str, ParamValue] | None = None) -> str:
        """The optimized IR as text."""
        return self.compile(params).ir()

    def save(self, build_dir: str | os.PathLike, params: Mapping[str, ParamValue] | None = None) -> str:
        """Write the build directory for `veil run` / `veil local`."""
        return self.compile(params).save(build_dir)

    def emulate(self, inputs: Inputs | None = None, *, params: Mapping[str, ParamValue] | None = None,
                check_overflow: bool = True) -> Outputs:
        """Run in clear with the protocols' fixed-point semantics (see api.emulate)."""
        return emulate(self.front_end(params), inputs, check_overflow=check_overflow)

    def run(self, inputs: Inputs | None = None, *, params: Mapping[str, ParamValue] | None = None,
            processes: bool = False, timeout: float = 600.0) -> Outputs:
        """Run the MPC with every party (see api.run)."""
        return run(self.compile(params), inputs, processes=processes, timeout=timeout)

    # making the text
    def _param_values(self, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        """Each function parameter's value (decorator's params, else its default), then the rest."""
        values: dict[str, ParamValue] = {}
        for name in self._src.arg_names:
            if name in params:
                values[name] = params[name]
            elif name in self._src.arg_defaults:
                values[name] = self._src.arg_defaults[name]
            else:
                raise UsageErr(f"@program: parameter {name!r} of {self.name} has no value", self._decorator_span(),
                               f"give it a default ({name}=8) or pass params={{{name!r}: ...}} to @program")
        values.update((k, v) for k, v in params.items() if k not in values)
        for name, value in values.items():
            _param_literal(name, value)
        return values

    def _trailer(self) -> str:
        """The generated statements, after the body: parties, protocol, params, and the call."""
        out = [f"party {', '.join(self.parties)}"]
        if self.protocol:
            out.append(f"protocol {self.protocol}")
        out += [f"param {k} = {_param_literal(k, v)}" for k, v in self.params.items()]
        out.append(f"{self.name}({', '.join(f'{a}={a}' for a in self._src.arg_names)})")
        return "\n".join(out) + "\n"

    def _decorator_span(self) -> Span:
        line = self._src.decorator_line
        text = linecache.getline(self._src.file, line).rstrip("\n")
        start = len(text) - len(text.lstrip())
        return Span(self._src.file, line, start + 1, line, max(len(text), start + 1) + 1)

    def _relocate(self, err: VeilError) -> VeilError:
        """Errors on the generated lines (party, protocol, params, call) point at the decorator."""
        if isinstance(err, ErrorList):
            err.errors = [self._relocate(e) for e in err.errors]
            err.span = err.errors[0].span
            return err
        s = err.span
        if s is not None and s.file == self._src.file and s.line > self._src.last_line:
            err.span = self._decorator_span()
        return err


def _param_literal(name: str, value: ParamValue) -> str:
    """A param's value as veil source text."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return _param_literal(name, kind(value))
            except ValueError:
                pass
        if value.lower() in ("true", "false"):
            return value.capitalize()
    raise UsageErr(f"param {name}: expected a finite int, float or bool, got {value!r}")


def _function_source(fn: Callable[..., Any]) -> _Source:
    """Read a function's definition and lay its body out as a veil program (see ProgramFunction)."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        lines, first = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError):
        raise UsageErr(f"@program: cannot read the source of {name}", None,
                       "define it in a .py file or a notebook cell, or compile program text with api.compile")
    first = max(first, 1)
    code = "".join(lines)
    indented = bool(lines) and lines[0][:1] in (" ", "\t")
    try:
        tree = pyast.parse(("if 1:\n" + code) if indented else code)
    except SyntaxError:
        tree = pyast.Module(body=[], type_ignores=[])
    shift = 1 if indented else 0
    stmts = tree.body[0].body if indented and tree.body else tree.body  # type: ignore[attr-defined]
    node = stmts[0] if stmts else None
    if not isinstance(node, pyast.FunctionDef):
        raise UsageErr(f"@program decorates a plain `def` function; {name} is not one")
    args = node.args
    if args.vararg or args.kwarg:
        raise UsageErr(f"@program: {name} may not take *args or **kwargs", None, "list each param by name")
    arg_names = tuple(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs)
    sig = inspect.signature(fn)
    defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}

    def abs_line(rel: int) -> int:  # a line of `code` -> a line of the .py file
        return first + rel - 1 - shift

    def_line, body = abs_line(node.lineno), node.body[0]
    body_line, last_line = abs_line(body.lineno), abs_line(node.end_lineno or body.lineno)
    header = f"def {name}({', '.join(arg_names)}):"
    out = [""] * (def_line - 1)
    src_line = lines[def_line - first]
    if body_line == def_line:  # `def f(): body` on one line: keep the body's columns
        col = len(src_line.encode()[:body.col_offset].decode(errors="ignore"))
        out.append(header.ljust(col) + src_line[col:].rstrip("\n"))
        body_line += 1
    else:  # the signature's other lines, up to the body, become blank
        out.append(header)
        out.extend([""] * (body_line - def_line - 1))
    out.extend(line.rstrip("\n") for line in lines[body_line - first:last_line - first + 1])
    return _Source("\n".join(out) + "\n", file, first, last_line, arg_names, defaults)
