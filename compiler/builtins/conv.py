"""Convolution gathers: im2col (the windows of a convolution as rows, so conv2d is one ring matmul)
and col2im, its adjoint (a convolution's input gradient). Both are linear gathers/scatters by
compile-time positions, so on secret values they run locally on each share (runtime/ops.py)."""
from __future__ import annotations

from typing import Any

from veil.runtime.diagnostics import ShapeErr, TypeErr
from veil.runtime.ops import conv_out
from ..ir import Value
from .args import Args, _describe, _shape_arg


def conv_pads(h: int, w: int, kh: int, kw: int, stride: int, padding: Any, span) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for an int padding, "valid" (none) or "same" (TensorFlow's:
    ceil(H / stride) outputs, the odd pixel of padding at the bottom and right)."""
    if isinstance(padding, bool) or not isinstance(padding, (int, str)):
        raise TypeErr(f"padding must be an int, \"valid\" or \"same\", got {_describe(padding)}", span)
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        def split(n: int, k: int) -> tuple[int, int]:
            total = max((-(-n // stride) - 1) * stride + k - n, 0)
            return total // 2, total - total // 2
        return split(h, kh) + split(w, kw)
    if isinstance(padding, str):
        raise TypeErr(f"unknown padding {padding!r}", span, "padding is an int, \"valid\" or \"same\"")
    if padding < 0:
        raise ShapeErr(f"padding {padding} is negative", span)
    return padding, padding, padding, padding


def _window(a: Args, image: tuple[int, ...], span) -> tuple[int, int, int, tuple[int, int, int, int]]:
    """The checked window (kh, kw), stride and pads of a call on an (N, C, H, W) image."""
    kh, kw, stride = a.get("kh"), a.get("kw"), a.get("stride", 1)
    for name, v in (("kh", kh), ("kw", kw), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise TypeErr(f"{a.name}() {name} must be a positive int known at compile time, got {_describe(v)}",
                          a.span(name))
    pads = conv_pads(image[2], image[3], kh, kw, stride, a.get("padding", 0), a.span("padding"))
    if image[2] + pads[0] + pads[1] < kh or image[3] + pads[2] + pads[3] < kw:
        raise ShapeErr(f"a {kh}x{kw} window does not fit the image {image[2]}x{image[3]} padded by {pads}", span)
    return kh, kw, stride, pads


def _image(x: Any, name: str, span) -> Value:
    if not isinstance(x, Value) or len(x.type.shape) != 4:
        shape = x.type.shape if isinstance(x, Value) else _describe(x)
        raise ShapeErr(f"{name}() takes images of shape (N, C, H, W), got {shape}", span)
    return x


def _im2col(b, e, scope):
    a = Args(b, "im2col", e, scope, ["x", "kh", "kw", "stride", "padding"], 3)
    x = b.trunc(_image(b.tensor(a.get("x"), e.span), "im2col", e.span), e.span)
    n, c, h, w = x.type.shape
    kh, kw, stride, pads = _window(a, x.type.shape, e.span)
    oh, ow = conv_out(h, kh, stride, pads[0], pads[1]), conv_out(w, kw, stride, pads[2], pads[3])
    return b.emit("im2col", [x], x.type.with_(shape=(n * oh * ow, c * kh * kw)), e.span,
                  kh=kh, kw=kw, stride=stride, pads=list(pads))


def _col2im(b, e, scope):
    a = Args(b, "col2im", e, scope, ["cols", "shape", "kh", "kw", "stride", "padding"], 4)
    cols = b.trunc(b.tensor(a.get("cols"), e.span), e.span)
    image = _shape_arg(a.get("shape"), a.span("shape"))
    if len(image) != 4:
        raise ShapeErr(f"col2im() shape must be (N, C, H, W), got {image}", a.span("shape"))
    kh, kw, stride, pads = _window(a, image, e.span)
    n, c, h, w = image
    oh, ow = conv_out(h, kh, stride, pads[0], pads[1]), conv_out(w, kw, stride, pads[2], pads[3])
    if cols.type.shape != (n * oh * ow, c * kh * kw):
        raise ShapeErr(f"col2im() of {image} with a {kh}x{kw} window, stride {stride}, takes columns of shape "
                       f"{(n * oh * ow, c * kh * kw)}, got {cols.type.shape}", e.span)
    return b.emit("col2im", [cols], cols.type.with_(shape=tuple(image)), e.span,
                  image=list(image), kh=kh, kw=kw, stride=stride, pads=list(pads))


def _conv_size(b, e, scope):
    """conv_size(h, k, stride, padding) -> the output length along one axis (a compile-time int)."""
    a = Args(b, "conv_size", e, scope, ["h", "k", "stride", "padding"], 2)
    h, k, stride = a.get("h"), a.get("k"), a.get("stride", 1)
    for name, v in (("h", h), ("k", k), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise TypeErr(f"conv_size() {name} must be a positive int, got {_describe(v)}", a.span(name))
    top, bottom, _, _ = conv_pads(h, h, k, k, stride, a.get("padding", 0), a.span("padding"))
    return conv_out(h, k, stride, top, bottom)


CONV = {"im2col": _im2col, "col2im": _col2im, "conv_size": _conv_size}
