"""The protocol line and its --protocol override, and -D param overrides. A protocol line is
checked against the plug-ins' own declarations (name, positional parties, named roles), so a new
protocol needs no change here."""
from __future__ import annotations

from typing import Any

from veil.runtime.diagnostics import NameErr, Span, TypeErr, UsageErr, VeilError, closest
from veil.runtime.protocols import ALIASES, PROTOCOLS, canonical


def _usages() -> str:
    return " or ".join(p.usage() for p in PROTOCOLS.values())


class Header:
    """The Builder method that checks and records the program's protocol."""

    def set_protocol(self, name: str, args: list[str], kwargs: dict[str, str], span: Span | None,
                     cli: bool = False) -> None:
        """Check and record the protocol; `cli` errors (from --protocol) are usage errors."""
        where = f"--protocol {self.protocol_override!r}: " if cli else ""

        def fail(cls, msg: str, hint: str | None) -> VeilError:
            return UsageErr(where + msg, None, hint) if cli else cls(msg, span, hint)

        proto = PROTOCOLS.get(canonical(name))
        if proto is None:
            near = closest(name, list(PROTOCOLS) + list(ALIASES))
            raise fail(UsageErr, f"unknown protocol {name!r}", f"did you mean {near}?" if near else
                       f"known protocols: {', '.join(PROTOCOLS)} (also {', '.join(ALIASES)})")
        shown = name if name == proto.name else f"{name} (= {proto.name})"
        name = proto.name
        args, kwargs = _roles_by_position(proto, list(args), dict(kwargs))
        for k in kwargs:
            if k not in proto.keywords:
                raise fail(TypeErr, f"protocol {shown} has no keyword {k!r}", _usages())
        if len(args) != proto.positional:
            raise fail(TypeErr, f"protocol {shown} takes {proto.positional} parties, got {len(args)}", _usages())
        for k in proto.keywords:
            if k not in kwargs:
                raise fail(TypeErr, f"protocol {shown} needs a {k}", proto.usage())
        compute = proto.compute_parties(args, kwargs)
        for p in compute:
            if p not in self.prog.parties:
                near = closest(p, self.prog.parties)
                raise fail(NameErr, f"unknown party {p!r} in protocol",
                           f"did you mean {near}?" if near else
                           f"the program's parties: {', '.join(self.prog.parties) or 'none yet'}")
        if len(set(compute)) != len(compute):
            raise fail(TypeErr, "a party appears twice in the protocol", "name each compute party once")
        self.prog.protocol, self.prog.compute, self.prog.protocol_args = name, compute, kwargs


def _roles_by_position(proto, args: list[str], kwargs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Parties past the positional ones fill the named roles in order: pond(a, b, c) is
    dealer2(a, b, dealer=c). A role also named by keyword is left for the arity check to report."""
    extra = args[proto.positional:]
    free = [k for k in proto.keywords if k not in kwargs]
    if not extra or len(extra) > len(free):
        return args, kwargs
    return args[:proto.positional], {**kwargs, **dict(zip(free, extra))}


DEFAULT_FRAC_BITS = 16
PRECISION_RANGE = (8, 30)  # fewer bits keep too little of a product; more leave no headroom in the ring


class Precision:
    """The Builder method that applies a `precision F` line (unless --frac-bits overrides it)."""

    def set_precision(self, bits: Any, span: Span, value_span: Span, first_op: bool) -> None:
        """Check the declared fractional bits and use them for every fix value that follows."""
        lo, hi = PRECISION_RANGE
        if not isinstance(bits, int) or isinstance(bits, bool):
            raise TypeErr(f"precision takes a compile-time int (the fractional bits), got {bits!r}", value_span,
                          "e.g. `precision 20`, or a param: `param FRAC = 20` then `precision FRAC`")
        if not lo <= bits <= hi:
            raise TypeErr(f"precision {bits}: choose between {lo} and {hi} fractional bits", value_span,
                          f"a fix value needs room in the 64-bit ring for a product at twice the scale; "
                          f"{DEFAULT_FRAC_BITS} (the default) suits values up to about 32768, 20 up to about 2048")
        if self.precision_span is not None:
            raise TypeErr("the precision is declared twice", span, "keep one `precision` line")
        if not first_op:
            raise TypeErr("`precision` must come before any computation", span,
                          "put it with the party, protocol and param lines at the top of the program")
        self.precision_span = span
        if self.frac_bits_override is None:
            self.frac_bits = self.prog.frac_bits = bits


def coerce_param(name: str, raw: Any, kind: type) -> Any:
    """Read a -D NAME=VALUE override as the param's own type."""
    if kind is str:
        if not isinstance(raw, str):
            raise UsageErr(f"param {name}={raw!r}: expected a string")
        return raw
    if not isinstance(raw, str):  # from the Python API: the value must already be of that type
        if isinstance(raw, bool) != (kind is bool) or not isinstance(raw, (int, float)) or \
                (kind is int and not isinstance(raw, int)):
            raise UsageErr(f"param {name}={raw!r}: expected {'an' if kind is int else 'a'} {kind.__name__}")
        return kind(raw)
    try:
        if kind is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        return kind(raw)
    except ValueError:
        raise UsageErr(f"-D {name}={raw}: expected {'an' if kind is int else 'a'} {kind.__name__}") from None


def parse_protocol_spec(spec: str) -> tuple[str, list[str], dict[str, str]]:
    """Parse --protocol "rep3(a, b, c)" or "dealer2(a, b, dealer=c)"."""
    import re

    example = 'e.g. --protocol "rep3(alice, bob, carol)"'
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", spec or "")
    if not m:
        raise UsageErr(f"--protocol {spec!r}: expected NAME(party, ...)", None, example)
    args, kwargs = [], {}
    parts = [p.strip() for p in m.group(2).split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    for part in parts:
        k, sep, v = (x.strip() for x in part.partition("="))
        name = v if sep else k
        if not name.isidentifier() or (sep and not k.isidentifier()):
            raise UsageErr(f"--protocol {spec!r}: {part!r} is not a party name", None, example)
        if sep:
            if k in kwargs:
                raise UsageErr(f"--protocol {spec!r}: {k}= given twice", None, example)
            kwargs[k] = v
        else:
            if kwargs:
                raise UsageErr(f"--protocol {spec!r}: a party after a keyword", None, example)
            args.append(k)
    return m.group(1), args, kwargs
