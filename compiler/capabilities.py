"""What the program's protocol can do, read from its declarations: the one place where the
compiler interprets a protocol plug-in (runtime/protocols). The lowering, the truncation pass, DCE
and the expansion layer ask here; none of them names a protocol or a kernel.

An op on secret operands is computed
- locally, share by share, when the registry says it is linear, or bilinear with one secret operand;
- by the kernel the protocol declares for it (`Protocol.native`), or a fused kernel (`fusions`);
- by an expansion into other ops (compiler/expand.py) when the protocol has no kernel for it;
- otherwise not at all: the lowering refuses it, naming the protocol and the line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.runtime.ops import OPS
from veil.runtime.protocols import get_protocol
from veil.runtime.protocols.base import Cost, KernelSpec, Protocol

from .ir import Op, Program, Value
from .types import PUBLIC, SECRET


def secret_ins(op: Op) -> list[Value]:
    """The operands of an op that are secret."""
    return [v for v in op.ins if v.type.vis == SECRET]


@dataclass
class Capabilities:
    """A protocol's declarations, as the compiler's passes need them for one program."""

    protocol: Protocol
    compute: list[str]

    @classmethod
    def of(cls, prog: Program) -> "Capabilities":
        return cls(get_protocol(prog.protocol), list(prog.compute))

    @property
    def name(self) -> str:
        return self.protocol.name

    def spec(self, kernel: str) -> KernelSpec:
        return self.protocol.kernels[kernel]

    def kernel_of(self, op: Op) -> str | None:
        """The protocol kernel that computes this op, if the op needs one (secret operands that
        no local computation handles) and the protocol has one."""
        if not self.needs_kernel(op) or not self.kinds_ok(op):
            return None
        return self.protocol.native.get(op.opcode)

    def kinds_ok(self, op: Op) -> bool:
        """Whether every secret operand's share kind is one the op and the protocol both take."""
        accepted = set(self.protocol.share_kinds) & set(OPS[op.opcode].kinds)
        return all(v.type.kind in accepted for v in secret_ins(op))

    def needs_kernel(self, op: Op) -> bool:
        """Whether the op communicates: sharing a private value, opening a secret, or work on
        secrets that no party can do alone (neither linear nor a product with a clear operand)."""
        d = OPS[op.opcode]
        if d.identity:
            before, after = op.ins[0].type.vis, op.out.type.vis
            return before != after and before != PUBLIC
        sec = secret_ins(op)
        if not sec or not op.outs:
            return False
        return not (d.linear or (d.bilinear and len(sec) < len(op.ins)))

    def computes(self, op: Op) -> bool:
        """Whether the protocol computes the op as it stands (locally or by a kernel)."""
        if not self.kinds_ok(op):
            return False
        return not self.needs_kernel(op) or self.kernel_of(op) is not None

    def kernel_attrs(self, kernel: str, op: Op, out: Value | None, **extra: Any) -> dict[str, Any]:
        """A kernel's attributes: the op's own, plus the output shape if the kernel takes it."""
        attrs = {**op.attrs, **extra}
        if self.spec(kernel).shaped:
            attrs["shape"] = list((out or op.ins[0]).type.shape)
        return attrs

    def cost(self, kernel: str, n: int, sizes: list[int], attrs: dict[str, Any]) -> Cost:
        return self.spec(kernel).cost(self.compute, n, sizes=sizes, **attrs)

    def rounds(self, kernel: str, op: Op) -> int:
        """The declared rounds of the kernel when it computes this op."""
        n = op.outs[0].type.size if op.outs else op.ins[0].type.size
        return self.cost(kernel, n, [v.type.size for v in op.ins], self.kernel_attrs(kernel, op, None)).rounds

    def fused(self, producer: str, consumer: str) -> str | None:
        """One kernel that computes `consumer(producer(...))`, if the protocol offers it."""
        return self.protocol.fusions.get((producer, consumer))

    def additive(self, opcode: str) -> str | None:
        """The kernel leaving a product in additive shares (sums of products truncated once)."""
        return self.protocol.additive.get(opcode)

    @property
    def additive_trunc(self) -> str | None:
        """The kernel truncating a sum held in additive shares back into a sharing."""
        return self.protocol.additive_trunc

    def keeps(self, kernel: str) -> bool:
        """Whether the kernel can leave its output pending after its first round (keep=True)."""
        return self.protocol.pending_finish is not None and kernel in self.protocol.keep

    def pending_kernel(self, kernel: str) -> str | None:
        """The variant of a kernel that takes a pending operand, if any."""
        return self.protocol.pending_kernels.get(kernel) if self.protocol.pending_finish else None

    def takes_addend(self, kernel: str) -> bool:
        """Whether a truncating kernel can add a sharing, scaled by 2^bits, to its input (`addend`)."""
        return kernel in self.protocol.pending_addend

    @property
    def pending_mixed(self) -> bool:
        """Whether a pending value may meet a sharing: in a linear op, or as a product's other operand."""
        return self.protocol.pending_mixed

    def pending_local(self, opcode: str) -> bool:
        """Whether a linear op keeps a pending operand pending (mul: by a public value)."""
        return self.protocol.pending_finish is not None and opcode in self.protocol.pending_ops

    @property
    def pending_finish(self) -> str | None:
        """The kernel turning a pending output into a sharing (the truncation's round 2)."""
        return self.protocol.pending_finish

    @property
    def mask_kernel(self) -> str | None:
        """The kernel opening a secret once under a mask, for products that reuse it (compiler/masks.py)."""
        return self.protocol.mask_kernel

    def takes_masked(self, kernel: str) -> bool:
        """Whether the kernel takes a masked operand in place of a sharing."""
        return self.protocol.mask_kernel is not None and kernel in self.protocol.maskable

    def refusal(self, op: Op) -> str:
        """Why the protocol cannot compute the op, for the error message."""
        what = OPS[op.opcode].describe or op.opcode
        kinds = {v.type.kind for v in secret_ins(op)} - (set(self.protocol.share_kinds) & set(OPS[op.opcode].kinds))
        if kinds:
            return f"{what} on {'/'.join(sorted(kinds))}-shared values is not supported by the {self.name} protocol"
        return f"{what} on secret values is not yet supported by the {self.name} protocol"
