"""Types of veil values: visibility, dtype, static shape, and the fixed-point scale of the encoding."""
from __future__ import annotations

from dataclasses import dataclass

PUBLIC = "public"
SECRET = "secret"


def private(party: str) -> str:
    """The visibility of a value that `party` alone knows in clear."""
    return f"private({party})"


def owner(vis: str) -> str | None:
    """The party of a private visibility, else None."""
    return vis[8:-1] if vis.startswith("private(") else None


def join_vis(a: str, b: str) -> str:
    """Combining two values gives the higher visibility (LANGUAGE.md §4)."""
    if a == b:
        return a
    if SECRET in (a, b):
        return SECRET
    if a == PUBLIC:
        return b
    if b == PUBLIC:
        return a
    return SECRET  # private(P) with private(Q)


def join_dtype(a: str, b: str) -> str:
    """fix with int gives fix; bool takes part in arithmetic as int."""
    if "fix" in (a, b):
        return "fix"
    return "int"


ARITH = "arith"  # share kinds: an arithmetic sharing over Z_2^64 ...
BOOL = "bool"    # ... or a boolean (XOR) sharing of the same 64-bit words
SHARE_KINDS = (ARITH, BOOL)


@dataclass(frozen=True)
class Type:
    """A value's static type. `scale` is the number of fractional bits of its ring encoding; `kind`
    says how a secret value is shared (arithmetic or boolean); clear values are always arith."""

    vis: str
    dtype: str
    shape: tuple[int, ...]
    scale: int = 0
    kind: str = ARITH

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def with_(self, **kw) -> "Type":
        data = {"vis": self.vis, "dtype": self.dtype, "shape": self.shape, "scale": self.scale,
                "kind": self.kind}
        data.update(kw)
        return Type(**data)

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        sc = f"@{self.scale}" if self.dtype == "fix" else ""
        kind = "" if self.kind == ARITH else f" {self.kind}-shared"
        return f"{self.vis}{kind} {self.dtype}{sc}[{dims}]"
