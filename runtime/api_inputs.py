"""The API's inputs: numpy arrays, files or defaults, checked against a program's declarations
(the manifest) before anything runs, then encoded into the ring as the runtime does."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from veil.runtime.diagnostics import InputDataError, closest

from . import fixedpoint
from .inputs import load_input

#: One input's value: anything numpy.asarray takes, or the path of a .csv/.npy/IDX file.
InputValue = Any
#: {party: {input name: value}}; an input left out uses the program's `default=` file.
Inputs = Mapping[str, Mapping[str, InputValue]]


def load_inputs(manifest: Mapping[str, Any], inputs: Inputs | None) -> dict[str, dict[str, np.ndarray]]:
    """Check every input against the program's declarations and return the clear arrays
    ({party: {name: float64/int64/bool array}}); defaults fill what is left out."""
    inputs = {} if inputs is None else inputs
    if not isinstance(inputs, Mapping):
        raise InputDataError(f"inputs must be a dict {{party: {{input name: array}}}}, not {type(inputs).__name__}")
    parties = list(manifest["parties"])
    declared = {p: [d["name"] for d in manifest["inputs"].get(p, [])] for p in parties}
    for party, named in inputs.items():
        if party not in declared:
            near = closest(str(party), parties)
            raise InputDataError(f"inputs: the program has no party {party!r}",
                                 hint=f"did you mean {near}?" if near else f"its parties: {', '.join(parties)}")
        if not isinstance(named, Mapping):
            raise InputDataError(f"inputs[{party!r}] must be a dict {{input name: array}}, not {type(named).__name__}")
        for name in named:
            if name not in declared[party]:
                near = closest(str(name), declared[party])
                raise InputDataError(f"party {party}: the program has no input named {name!r}",
                                     hint=f"did you mean {near}?" if near else
                                     f"{party}'s inputs: {', '.join(declared[party]) or 'none'}")
    out: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="veil-in-") as tmp:
        for party in parties:
            out[party] = {}
            for d in manifest["inputs"].get(party, []):
                value = inputs.get(party, {}).get(d["name"], None)
                out[party][d["name"]] = _load_one(manifest, party, d, value, tmp)
    return out


def _load_one(manifest: Mapping[str, Any], party: str, decl: Mapping[str, Any], value: InputValue,
              tmp: str) -> np.ndarray:
    """One input, read and checked by runtime.inputs (a file path, an array, or the default)."""
    name = decl["name"]
    kw = {"head": decl["head"], "party": party, "name": name, "frac_bits": manifest["frac_bits"]}
    shape, dtype = tuple(decl["shape"]), decl["dtype"]
    if value is None:
        default = manifest.get("defaults", {}).get(f"{party}.{name}")
        if default is None:
            raise InputDataError(f"party {party}, input {name!r}: no value given and the program names no default",
                                 hint=f"pass inputs={{{party!r}: {{{name!r}: array of shape {shape}}}}}")
        return load_input(os.path.join(manifest["source_dir"], default), shape, dtype, **kw)
    if isinstance(value, (str, os.PathLike)):
        try:
            return load_input(os.fspath(value), shape, dtype, **kw)
        except InputDataError as err:  # the CLI's --input advice does not apply here
            if err.hint and "--input" in err.hint:
                err.hint = f"a relative path starts at the current directory, {os.getcwd()}"
            raise
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise InputDataError(f"party {party}, input {name!r}: not an array of numbers ({err})") from None
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"party {party}, input {name!r}: expected numbers, got an array of {arr.dtype}")
    path = os.path.join(tmp, f"{party}.{name}.npy")
    np.save(path, arr)
    try:
        return load_input(path, shape, dtype, **kw)
    except InputDataError as err:  # name the array the caller passed, not our temporary file
        raise InputDataError(err.message.replace(f"file {path}", f"array inputs[{party!r}][{name!r}]"),
                             err.span, err.hint) from None


def encode_inputs(manifest: Mapping[str, Any], clear: dict[str, dict[str, np.ndarray]]
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Clear inputs -> ring elements, the same rule as the runtime (runtime.fixedpoint)."""
    dtypes = {(p, d["name"]): d["dtype"] for p, ds in manifest["inputs"].items() for d in ds}
    F = manifest["frac_bits"]
    return {p: {n: fixedpoint.encode(a, dtypes[(p, n)], F) for n, a in named.items()} for p, named in clear.items()}
