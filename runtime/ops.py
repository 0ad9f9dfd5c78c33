"""The operation registry: every IR operation defined once — operands, attributes, shape and dtype
rule, clear-text semantics (the one implementation the emulator and the VM both run) and its
properties. The compiler's passes, the lowering and the emulator read these entries; they keep no
table of their own. It lives in the runtime package because the VM runs the semantics and the
runtime never imports the compiler.

To add an operation: one `_op(...)` entry here, a builder method that emits it, and either a
protocol kernel that lowers it (runtime/protocols) or an expansion (compiler/expand.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .randomness import private_draw
from .ring import U64, asring, div, dslice, index_key, matmul, signed, toint, trunc

Shape = tuple[int, ...]
ShapeRule = Callable[..., Shape]   # (input shapes, **attrs) -> output shape
DtypeRule = Callable[..., str]     # (input dtypes, **attrs) -> output dtype

ANY_VIS = frozenset({"public", "private", "secret"})
CLEAR_VIS = frozenset({"public", "private"})


@dataclass(frozen=True)
class OpDef:
    """One IR operation and everything the layers above the protocols know about it."""

    name: str
    arity: int | None              # operands; None: any number (concat, stack)
    attrs: tuple[str, ...]         # attribute names (a trailing '?' marks an optional one)
    shape: ShapeRule
    dtype: DtypeRule
    clear: Callable[..., np.ndarray] | None  # semantics on ring tensors; None: structural (loop, output)
    describe: str = ""             # how an error message names it
    pure: bool = True              # result depends on operands and attributes only, no effect
    linear: bool = False           # jointly linear in its operands: applies share by share
    bilinear: bool = False         # linear in each operand: local when all but one are clear
    commutative: bool = False      # its two operands may be swapped
    identity: bool = False         # changes who knows a value, not the value
    divides: bool = False          # its second operand is a divisor (zero is an error in clear)
    shadow: Callable[..., np.ndarray] | None = None  # float64 exact result: a ring result that wraps is reported
    index_operands: tuple[int, ...] = ()  # operands that are indices, not data (dslice's start)
    vis: frozenset[str] = ANY_VIS  # visibilities its operands may have
    kinds: tuple[str, ...] = ("arith",)  # share kinds a secret operand may have
    ufunc: np.ufunc | None = None  # its elementwise ring form, which may write into a dying operand

    def data_operands(self, n: int) -> list[int]:
        """The operand positions that carry data (truncations may move through them)."""
        return [i for i in range(n) if i not in self.index_operands]


# ---- shape and dtype rules ---------------------------------------------------------------------

def _same(shapes: list[Shape], **_: Any) -> Shape:
    return tuple(shapes[0])


def _bcast(shapes: list[Shape], **_: Any) -> Shape:
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _matmul_shape(shapes: list[Shape], **_: Any) -> Shape:
    a, b = (tuple(s) for s in shapes)
    if len(a) < 1 or len(b) < 1 or a[-1] != b[0 if len(b) == 1 else -2]:
        raise ValueError(f"matmul of shapes {a} and {b}")
    head = tuple(np.broadcast_shapes(a[:-2], b[:-2])) if len(a) > 1 and len(b) > 1 else ()
    rows = a[-2:-1] if len(a) > 1 else ()
    cols = b[-1:] if len(b) > 1 else ()
    return head + rows + cols


def _reduce(shapes: list[Shape], axis: int | None = None, **_: Any) -> Shape:
    s = tuple(shapes[0])
    return () if axis is None else s[:axis] + s[axis + 1:]


def _transpose(shapes: list[Shape], axes: Any = None, **_: Any) -> Shape:
    s = tuple(shapes[0])
    return tuple(reversed(s)) if axes is None else tuple(s[i] for i in axes)


def _given(shapes: list[Shape], shape: Any, **_: Any) -> Shape:
    return tuple(int(d) for d in shape)


def _slice(shapes: list[Shape], key: Any, **_: Any) -> Shape:
    view = np.broadcast_to(np.zeros((), dtype=np.uint8), tuple(shapes[0]))  # no memory, any size
    return view[index_key(key)].shape


def _dslice(shapes: list[Shape], axis: int, length: int, **_: Any) -> Shape:
    s = list(shapes[0])
    s[axis] = length
    return tuple(s)


def _concat(shapes: list[Shape], axis: int, **_: Any) -> Shape:
    s = list(shapes[0])
    s[axis] = sum(x[axis] for x in shapes)
    return tuple(s)


def _stack(shapes: list[Shape], axis: int, **_: Any) -> Shape:
    s = list(shapes[0])
    s.insert(axis, len(shapes))
    return tuple(s)


def _take(shapes: list[Shape], index: Any, axis: int, **_: Any) -> Shape:
    s = list(shapes[0])
    s[axis] = int(np.size(index))
    return tuple(s)


def _const_shape(shapes: list[Shape], value: Any, **_: Any) -> Shape:
    return tuple(np.shape(value))


def _declared(shapes: list[Shape], **_: Any) -> Shape:
    raise LookupError("declared by the program")  # input: the shape is the declaration's


def _none(shapes: list[Shape], **_: Any) -> Shape:
    return ()


def _join(dtypes: list[str], **_: Any) -> str:
    return "fix" if "fix" in dtypes else "int" if "int" in dtypes or len(set(dtypes)) > 1 else dtypes[0]


def _first(dtypes: list[str], **_: Any) -> str:
    return dtypes[0]


def _counted(dtypes: list[str], **_: Any) -> str:
    return "int" if dtypes[0] == "bool" else dtypes[0]  # arithmetic on bools counts in ints


def _bool(dtypes: list[str], **_: Any) -> str:
    return "bool"


def _int(dtypes: list[str], **_: Any) -> str:
    return "int"


def _fix(dtypes: list[str], **_: Any) -> str:
    return "fix"


def _unchecked(dtypes: list[str], **_: Any) -> str | None:
    return None  # the builder chooses (a retag's target dtype is its output type)


def _attr_dtype(dtypes: list[str], dtype: str = "fix", **_: Any) -> str:
    return dtype


def _branches(dtypes: list[str], **_: Any) -> str:
    return _join(dtypes[1:])


# ---- clear-text semantics on ring tensors -----------------------------------------------------

def _f(x: np.ndarray) -> np.ndarray:
    return signed(x).astype(np.float64)


def _divide(fn: Callable, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's floor division or modulo on the signed readings (x // 0 and x % 0 give 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return asring(fn(signed(a), signed(b)))


def _cmp(fn: Callable) -> Callable[..., np.ndarray]:
    return lambda a, b: asring(fn(signed(a), signed(b)).astype(U64))


def at_offsets(a: np.ndarray, shape: Any, sign: int, offsets: Any) -> np.ndarray:
    """sign * broadcast_to(a, shape) + offsets: one secret base compared with many public thresholds
    (msb_at, msb_at_mul; the compiler's offsets pass builds them, compiler/passes/offsets.py)."""
    z = np.broadcast_to(np.asarray(a, dtype=U64), tuple(int(d) for d in shape))
    z = U64(0) - z if int(sign) < 0 else z
    return asring(z + np.asarray(offsets, dtype=U64))


OPS: dict[str, OpDef] = {}


def _op(name: str, arity: int | None, attrs: tuple[str, ...], shape: ShapeRule, dtype: DtypeRule,
        clear: Callable[..., np.ndarray] | None, **props: Any) -> None:
    OPS[name] = OpDef(name, arity, attrs, shape, dtype, clear, **props)


# structure and data movement
_op("const", 0, ("value",), _const_shape, _unchecked, lambda value, **_: value, describe="a constant")
_op("input", 0, ("party", "name", "dtype"), _declared, _attr_dtype, None, describe="input()", pure=False)
_op("output", 1, ("name", "to", "dtype", "scale"), _none, _first, None, describe="output()", pure=False)
_op("loop", None, ("trips", "start", "step"), _none, _first, None, describe="a for loop", pure=False)
_op("share", 1, ("owner",), _same, _first, lambda a, **_: a, describe="secret sharing", identity=True,
    vis=CLEAR_VIS)
_op("from_public", 1, (), _same, _first, lambda a: a, describe="a public value as a sharing", identity=True,
    vis=frozenset({"public"}))
_op("reveal", 1, (), _same, _first, lambda a: a, describe="reveal()", identity=True)
_op("reveal_to", 1, ("party",), _same, _first, lambda a, **_: a, describe="reveal(x, to=party)", identity=True)
_op("retag", 1, (), _same, _unchecked, lambda a: a, describe="a change of dtype", identity=True, linear=True)
# linear: computed share by share on secret values, no communication
_op("add", 2, (), _bcast, _join, lambda a, b: asring(a + b), describe="`+`", linear=True, commutative=True,
    shadow=lambda a, b: _f(a) + _f(b), ufunc=np.add)
_op("sub", 2, (), _bcast, _join, lambda a, b: asring(a - b), describe="`-`", linear=True,
    shadow=lambda a, b: _f(a) - _f(b), ufunc=np.subtract)
_op("neg", 1, (), _same, _counted, lambda a: asring(U64(0) - a), describe="unary `-`", linear=True,
    shadow=lambda a: -_f(a))
_op("lshift", 1, ("bits",), _same, _fix, lambda a, bits: asring(a << U64(bits)), describe="a rescaling",
    linear=True, shadow=lambda a, bits: _f(a) * 2.0 ** bits)
_op("sum", 1, ("axis?",), _reduce, _counted, lambda a, axis=None: asring(np.sum(a, axis=axis, dtype=U64)),
    describe="sum()", linear=True, shadow=lambda a, axis=None: np.sum(_f(a), axis=axis))
_op("transpose", 1, ("axes?",), _transpose, _first, lambda a, axes=None: asring(np.transpose(a, axes)),
    describe="transpose()", linear=True)
_op("reshape", 1, ("shape",), _given, _first, lambda a, shape: asring(np.reshape(a, shape)),
    describe="reshape()", linear=True)
_op("broadcast", 1, ("shape",), _given, _first, lambda a, shape: asring(np.broadcast_to(a, shape).copy()),
    describe="broadcasting", linear=True)
_op("slice", 1, ("key",), _slice, _first, lambda a, key: asring(a[index_key(key)]), describe="indexing",
    linear=True)
_op("dslice", 2, ("axis", "length", "step"), _dslice, _first,
    lambda a, start, axis, length, step: asring(dslice(a, start, axis, length, step)),
    describe="indexing by a loop variable", linear=True, index_operands=(1,))
_op("concat", None, ("axis",), _concat, _first, lambda *xs, axis: asring(np.concatenate(xs, axis=axis)),
    describe="concat()", linear=True)
_op("stack", None, ("axis",), _stack, _first, lambda *xs, axis: asring(np.stack(xs, axis=axis)),
    describe="stack()", linear=True)
# products: local when one operand is clear, a protocol kernel when both are secret
_op("mul", 2, (), _bcast, _join, lambda a, b: asring(a * b), describe="`*`", bilinear=True, commutative=True,
    shadow=lambda a, b: _f(a) * _f(b))
_op("matmul", 2, (), _matmul_shape, _join, lambda a, b: asring(matmul(a, b)), describe="`@`", bilinear=True,
    shadow=lambda a, b: np.matmul(_f(a), _f(b)))
_op("trunc", 1, ("bits",), _same, _first, lambda a, bits: asring(trunc(a, bits)), describe="a truncation",
    shadow=lambda a, bits: _f(a) / 2.0 ** bits)
# comparisons and selection (secret operands need a comparison primitive)
for _name, _fn, _sym in (("lt", np.less, "<"), ("le", np.less_equal, "<="), ("gt", np.greater, ">"),
                         ("ge", np.greater_equal, ">="), ("eq", np.equal, "=="), ("ne", np.not_equal, "!=")):
    _op(_name, 2, (), _bcast, _bool, _cmp(_fn), describe=f"comparison `{_sym}`",
        commutative=_name in ("eq", "ne"))
_op("bitand", 2, (), _bcast, _bool, lambda a, b: asring(a & b), describe="`&`", commutative=True)
_op("bitor", 2, (), _bcast, _bool, lambda a, b: asring(a | b), describe="`|`", commutative=True)
_op("bitnot", 1, (), _same, _bool, lambda a: asring(U64(1) - a), describe="`~`")
_op("where", 3, (), _bcast, _branches, lambda c, a, b: asring(np.where(c != U64(0), a, b)), describe="where()")
_op("abs", 1, (), _same, _first, lambda a: asring(np.abs(signed(a))), describe="abs()")
_op("maximum", 2, (), _bcast, _join, lambda a, b: asring(np.maximum(signed(a), signed(b))),
    describe="max(a, b)", commutative=True)
_op("minimum", 2, (), _bcast, _join, lambda a, b: asring(np.minimum(signed(a), signed(b))),
    describe="min(a, b)", commutative=True)
_op("rmax", 1, ("axis?",), _reduce, _first, lambda a, axis=None: asring(np.max(signed(a), axis=axis)),
    describe="max()")
_op("rmin", 1, ("axis?",), _reduce, _first, lambda a, axis=None: asring(np.min(signed(a), axis=axis)),
    describe="min()")
_op("argmax", 1, ("axis?",), _reduce, _int,
    lambda a, axis=None: asring(np.argmax(signed(a), axis=axis).astype(np.int64)), describe="argmax()")
_op("argmin", 1, ("axis?",), _reduce, _int,
    lambda a, axis=None: asring(np.argmin(signed(a), axis=axis).astype(np.int64)), describe="argmin()")
_op("sort", 1, ("axis",), _same, _first, lambda a, axis: asring(np.sort(signed(a), axis=axis)), describe="sort()")
_op("take", 1, ("index", "axis"), _take, _first, lambda a, index, axis: asring(np.take(a, index, axis=axis)),
    describe="a gather by constant indices", linear=True)
# share conversions: the primitives comparisons are built from (compiler/expand.py)
_op("msb", 1, (), _same, _bool, lambda a: asring(a >> U64(63)), describe="a sign bit")
_op("msb_at", 1, ("shape", "sign", "offsets"), _given, _bool,
    lambda a, shape, sign, offsets: asring(at_offsets(a, shape, sign, offsets) >> U64(63)),
    describe="a sign bit at public offsets")
_op("msb_at_mul", 1, ("shape", "sign", "offsets", "dsign", "doffsets"), _given, _first,
    lambda a, shape, sign, offsets, dsign, doffsets: asring(
        (at_offsets(a, shape, sign, offsets) >> U64(63)) * at_offsets(a, shape, dsign, doffsets)),
    describe="a sign bit at public offsets times the same base at other offsets")
_op("a2b", 1, (), _same, _int, lambda a: a, describe="a bit decomposition", identity=False,
    kinds=("arith",))
_op("b2a", 1, (), _same, _int, lambda a: a, describe="a boolean sharing as a number", kinds=("bool",))
_op("bitinject", 1, ("bit",), _same, _bool, lambda a, bit: asring((a >> U64(bit)) & U64(1)),
    describe="a bit of a boolean sharing as a number", kinds=("bool",))
# division and conversions
_op("floordiv", 2, (), _bcast, _int, lambda a, b: _divide(np.floor_divide, a, b), describe="`//`", divides=True)
_op("mod", 2, (), _bcast, _join, lambda a, b: _divide(np.mod, a, b), describe="`%`", divides=True)
_op("div", 2, ("bits",), _bcast, _fix, lambda a, b, bits: asring(div(a, b, bits)),
    describe="division by a run-time value", divides=True)
_op("toint", 1, ("bits",), _same, _int, lambda a, bits: asring(toint(a, bits)), describe="int() of a fix value")

# random numbers (runtime/randomness.py): a compute party's private contribution, and the secret
# uniform tensor the expansion layer builds from the contributions (compiler/expand_random.py)
_op("draw", 0, ("party", "shape", "bits"), _given, _int,
    lambda party, shape, bits: private_draw(shape, bits), describe="a private random draw", pure=False)
_op("random", 0, ("shape", "bits"), _given, _fix, lambda shape, bits: private_draw(shape, bits),
    describe="a secret random tensor", pure=False)


# ---- convolution gathers (stdlib nn / ml.conv2d): linear, so local on shares -------------------

def conv_out(h: int, k: int, stride: int, before: int, after: int) -> int:
    """Output positions of a k-wide window sliding by `stride` over h padded by before + after."""
    return (h + before + after - k) // stride + 1


def _im2col_shape(shapes: list[Shape], kh: int, kw: int, stride: int, pads: Any, **_: Any) -> Shape:
    n, c, h, w = (int(d) for d in shapes[0])
    oh, ow = conv_out(h, kh, stride, pads[0], pads[1]), conv_out(w, kw, stride, pads[2], pads[3])
    return (n * oh * ow, c * kh * kw)


def _col2im_shape(shapes: list[Shape], image: Any, **_: Any) -> Shape:
    return tuple(int(d) for d in image)


def im2col_any(x: np.ndarray, kh: int, kw: int, stride: int, pads: Any) -> np.ndarray:
    """(N, C, H, W) -> (N*OH*OW, C*KH*KW): row (n, oh, ow) holds the padded window at (oh, ow),
    ordered (c, i, j) like a filter bank (F, C, KH, KW) flattened; any numpy dtype."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    oh, ow = conv_out(h, kh, stride, pads[0], pads[1]), conv_out(w, kw, stride, pads[2], pads[3])
    out = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out[:, :, :, :, i, j] = win.transpose(0, 2, 3, 1)
    return out.reshape(n * oh * ow, c * kh * kw)


def col2im_any(cols: np.ndarray, image: Any, kh: int, kw: int, stride: int, pads: Any) -> np.ndarray:
    """The adjoint of im2col: each column entry added back onto the pixel it was gathered from
    (overlapping windows sum; padding is dropped); uint64 sums wrap like the ring."""
    n, c, h, w = (int(d) for d in image)
    oh, ow = conv_out(h, kh, stride, pads[0], pads[1]), conv_out(w, kw, stride, pads[2], pads[3])
    blocks = cols.reshape(n, oh, ow, c, kh, kw)
    xp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride] += \
                blocks[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w].copy()


_op("im2col", 1, ("kh", "kw", "stride", "pads"), _im2col_shape, _first,
    lambda a, kh, kw, stride, pads: asring(im2col_any(a, kh, kw, stride, pads)),
    describe="im2col (the windows of a convolution)", linear=True)
_op("col2im", 1, ("image", "kh", "kw", "stride", "pads"), _col2im_shape, _first,
    lambda a, image, kh, kw, stride, pads: asring(col2im_any(a, image, kh, kw, stride, pads)),
    describe="col2im (a convolution's windows summed back)", linear=True,
    shadow=lambda a, image, kh, kw, stride, pads: col2im_any(_f(a), image, kh, kw, stride, pads))


def opdef(name: str) -> OpDef:
    """The registry entry of an opcode (a KeyError names an opcode nobody registered)."""
    return OPS[name]


def clear(name: str, *args: np.ndarray, **attrs: Any) -> np.ndarray:
    """Run an op's clear-text semantics: what the emulator and the VM compute on clear values."""
    return OPS[name].clear(*args, **attrs)
