"""The disclosure report: exactly the outputs and reveals each party receives (times the loop trips
they run in) and what leaves each party as shares, with the bytes the protocol declares."""
from __future__ import annotations

from veil.compiler.disclosure import disclosure, format_disclosure
from veil.runtime import api
from veil_cli import FRAUD, veil


def _what(items) -> list[tuple[str, str, int]]:
    return [(i.what, i.type, i.times) for i in items]


def test_fraud_detection_discloses_its_outputs_and_bobs_scores_only():
    c = api.compile(str(FRAUD))
    d = disclosure(c.prog)
    assert _what(d.learns["alice"]) == [("output w", "fix[32x1]", 1), ("output b", "fix[scalar]", 1),
                                        ("output accuracy", "fix[scalar]", 1)]
    assert _what(d.learns["bob"]) == [("reveal", "fix[7000x1]", 1), ("output accuracy", "fix[scalar]", 1)]
    assert d.learns["carol"] == [] and d.shares["carol"] == []
    assert _what(d.shares["alice"]) == [("input alice.x", "fix[7000x16]", 1)]
    steps = 20 * (7000 // 128)
    assert [i.times for i in d.shares["bob"]] == [1, steps]  # his features once, his labels every step
    assert all("input bob.data" in i.what for i in d.shares["bob"])
    assert d.shares["alice"][0].bytes == 7000 * 16 * 8  # rep3: the owner sends one component


def test_reveals_in_loops_and_input_only_parties():
    src = ('party alice, bob, carol, dave\nprotocol rep3(alice, bob, carol)\n'
           'x = secret(input(dave, "x", shape=(4,)))\nacc = x\nfor i in range(3):\n'
           '    acc = acc * x\n    seen = reveal(acc, to=carol)\n    acc = acc + seen\n'
           'output(acc, to=alice)\n')
    d = disclosure(api.compile(src).prog)
    assert _what(d.learns["carol"]) == [("output seen", "fix[4]", 3)]  # a named reveal in a loop: a history
    assert _what(d.learns["alice"]) == [("output acc", "fix[4]", 1)]
    assert _what(d.shares["dave"]) == [("input dave.x", "fix[4]", 1)] and d.shares["dave"][0].bytes == 6 * 4 * 8
    assert d.learns["dave"] == [] and d.learns["bob"] == []
    text = format_disclosure(d)
    assert "carol:\n    output seen fix[4] at <string>:7:12, 3 times" in text and "  bob: nothing" in text


def test_compile_disclosure_on_the_command_line(tmp_path):
    done = veil("compile", str(FRAUD), "--disclosure", "-o", "b", cwd=tmp_path)
    assert done.code == 0, done.err
    assert "what each party learns" in done.out and "carol: nothing" in done.out
    assert "input alice.x fix[7000x16]" in done.out
