"""The cost of one call of each stdlib nn layer and optim update at the sizes of the MNIST
networks, from the compiler's cost report (which `veil local --stats` measures exactly): rounds
on the critical path, bytes sent by all parties, secure comparisons and multiplications, for the
program computing the call on secret inputs and revealing its results, less the same program
revealing tensors of the results' shapes computed without the call.

    python programs/bench_nn.py [--protocol rep3|dealer2|both]
"""
from __future__ import annotations

import argparse

from veil.runtime import api

PROTOCOLS = {"rep3": "rep3(alice, bob, carol)", "dealer2": "dealer2(alice, bob, dealer=carol)"}
HEAD = "import nn\nimport optim\nparty alice, bob, carol\n"

# name, the inputs (name: shape, owner alice or bob), the statements computing the call
CASES = [
    ("dense 128x784x128 forward", {"x": (128, 784), "w": (784, 128), "b": (128,)},
     "y = nn.dense(x, w, b)\nres = [y]"),
    ("dense 128x784x128 backward (dw, db)", {"x": (128, 784), "dy": (128, 128)},
     "dw, db = nn.dense_backward_weights(x, dy)\nres = [dw, db]"),
    ("dense 128x128x128 backward (dx, dw, db)", {"x": (128, 128), "w": (128, 128), "dy": (128, 128)},
     "dx, dw, db = nn.dense_backward(x, w, dy)\nres = [dx, dw, db]"),
    ("relu 128x128 forward + backward", {"x": (128, 128), "dy": (128, 128)},
     "y = nn.relu(x)\ndx = nn.relu_backward(x, dy)\nres = [y, dx]"),
    ("conv 16 5x5 on (128,1,28,28) forward", {"x": (128, 1, 28, 28), "w": (16, 1, 5, 5), "b": (16,)},
     "y = nn.conv2d(x, w, b)\nres = [y]"),
    ("conv 16 5x5 on (128,1,28,28) backward (dw, db)", {"x": (128, 1, 28, 28), "w": (16, 1, 5, 5),
                                                        "dy": (128, 16, 24, 24)},
     "dw, db = nn.conv2d_backward_weights(x, w, dy)\nres = [dw, db]"),
    ("conv 16 5x5 on (128,16,12,12) backward (dx, dw, db)", {"x": (128, 16, 12, 12), "w": (16, 16, 5, 5),
                                                             "dy": (128, 16, 8, 8)},
     "dx, dw, db = nn.conv2d_backward(x, w, dy)\nres = [dx, dw, db]"),
    ("maxpool 2 on (128,16,24,24) forward", {"x": (128, 16, 24, 24)},
     "y = nn.maxpool2d(x, 2)\nres = [y]"),
    ("maxpool 2 on (128,16,24,24) forward + backward", {"x": (128, 16, 24, 24), "dy": (128, 16, 12, 12)},
     "y = nn.maxpool2d(x, 2)\ndx = nn.maxpool2d_backward(x, dy, 2)\nres = [y, dx]"),
    ("softmax CE (128,10) loss + backward", {"z": (128, 10), "y": (128, 10)},
     "l = nn.softmax_cross_entropy(z, y)\ndz = nn.softmax_cross_entropy_backward(z, y)\nres = [l, dz]"),
    ("accuracy (128,10)", {"z": (128, 10), "y": (128, 10)}, "a = nn.accuracy(z, y)\nres = [a]"),
    ("sgd on 100k weights", {"w": (100000,), "g": (100000,)}, "w2 = optim.sgd(w, g, 0.1)\nres = [w2]"),
    ("momentum on 100k weights", {"w": (100000,), "g": (100000,), "v": (100000,)},
     "w2, v2 = optim.momentum(w, g, v, 0.1)\nres = [w2, v2]"),
    ("adam on 100k weights", {"w": (100000,), "g": (100000,), "m": (100000,), "v": (100000,)},
     "w2, m2, v2 = optim.adam(w, g, m, v, 3, 0.001)\nres = [w2, m2, v2]"),
    ("amsgrad on 100k weights", {"w": (100000,), "g": (100000,), "m": (100000,), "v": (100000,),
                                 "vh": (100000,)},
     "w2, m2, v2, vh2 = optim.amsgrad(w, g, m, v, vh, 3, 0.001)\nres = [w2, m2, v2, vh2]"),
]


def _source(inputs: dict, body: str, shapes: dict | None = None) -> str:
    """The call's program, its results revealed to alice in full; with the results' `shapes`, the
    baseline: tensors of those shapes computed locally (a broadcast sum of the first input) are
    revealed instead, so the difference is the call's own cost."""
    lines = [HEAD]
    for i, (name, shape) in enumerate(inputs.items()):
        owner = "alice" if i == 0 else "bob"
        lines.append(f'{name} = secret(input({owner}, "{name}", shape={shape}))\n')
    outs = body.splitlines()[-1].removeprefix("res = [").removesuffix("]").split(", ")
    if shapes is None:
        lines += [line + "\n" for line in body.splitlines()[:-1]]
    first = next(iter(inputs))
    for name in outs:
        value = name if shapes is None else f"broadcast_to(sum({first}), {shapes['r_' + name]})"
        lines.append(f'output({value}, "r_{name}", to=alice)\n')
    return "".join(lines)


def _cost(src: str, protocol: str) -> dict:
    d = api.compile(src, protocol=protocol, file="bench_nn.mpc").cost.as_dict()
    return {"rounds": d["rounds"], "bytes": sum(d["bytes_sent"].values()),
            "comparisons": d["comparisons"], "multiplications": d["multiplications"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=["rep3", "dealer2", "both"], default="both")
    args = ap.parse_args()
    names = list(PROTOCOLS) if args.protocol == "both" else [args.protocol]
    print("| call | protocol | rounds | MB sent (all parties) | comparisons | multiplications |")
    print("|---|---|---|---|---|---|")
    for title, inputs, body in CASES:
        for p in names:
            src = _source(inputs, body)
            shapes = {o.name: o.shape for o in api.front_end(src, file="bench_nn.mpc").outputs}
            full, base = _cost(src, PROTOCOLS[p]), _cost(_source(inputs, body, shapes), PROTOCOLS[p])
            d = {k: full[k] - base[k] for k in full}
            print(f"| {title} | {p} | {d['rounds']} | {d['bytes'] / 1e6:.2f} | {d['comparisons']} | "
                  f"{d['multiplications']} |", flush=True)


if __name__ == "__main__":
    main()
