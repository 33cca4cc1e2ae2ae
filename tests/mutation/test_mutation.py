"""The mutation check itself: which mutants it makes, and how it runs and reports them."""

from __future__ import annotations

import ast
import json
import tempfile
from pathlib import Path

import pytest

from tests.mutation import runner
from tests.mutation.operators import apply, generate, unchanged
from tests.mutation.runner import Equivalent, Sandbox, load_config, main, run_module

SAMPLE = '''"""A sample module."""

from __future__ import annotations

__all__ = ["clamp"]

LIMIT: int = 10
"""The largest value."""


def clamp(x: int, names: list[str], flag: bool = True) -> int | None:
    """Return ``x`` clamped to ``LIMIT``."""
    if x > LIMIT and not flag:
        raise ValueError(f"{x} is over {LIMIT + 1}")
    names.append(b"n" + names[-1])
    for name in names:
        if name is None or name in "":
            continue
        break
    return x


if __name__ == "__main__":
    print(clamp(3, []))
'''


def test_one_mutant_per_change_and_none_in_docstrings_annotations_or_f_string_text() -> None:
    made = [(m.line, m.scope, m.operator, m.original, m.mutated) for m in generate(SAMPLE)]
    assert made == [
        (7, "<module>", "number", "LIMIT: int = 10", "LIMIT: int = 11"),
        (7, "<module>", "number", "LIMIT: int = 10", "LIMIT: int = 9"),
        (
            11,
            "clamp",
            "constant",
            "def clamp(x: int, names: list[str], flag: bool = True) -> int | None:",
            "def clamp(x: int, names: list[str], flag: bool = False) -> int | None:",
        ),
        (13, "clamp", "boolean", "if x > LIMIT and not flag:", "if x > LIMIT or not flag:"),
        (13, "clamp", "compare", "if x > LIMIT and not flag:", "if x >= LIMIT and not flag:"),
        (13, "clamp", "not", "if x > LIMIT and not flag:", "if x > LIMIT and flag:"),
        (14, "clamp", "delete", 'raise ValueError(f"{x} is over {LIMIT + 1}")', "pass"),
        (
            14,
            "clamp",
            "arithmetic",
            'raise ValueError(f"{x} is over {LIMIT + 1}")',
            'raise ValueError(f"{x} is over {LIMIT - 1}")',
        ),
        (
            14,
            "clamp",
            "number",
            'raise ValueError(f"{x} is over {LIMIT + 1}")',
            'raise ValueError(f"{x} is over {LIMIT + 2}")',
        ),
        (
            14,
            "clamp",
            "number",
            'raise ValueError(f"{x} is over {LIMIT + 1}")',
            'raise ValueError(f"{x} is over {LIMIT + 0}")',
        ),
        (15, "clamp", "delete", 'names.append(b"n" + names[-1])', "pass"),
        (15, "clamp", "arithmetic", 'names.append(b"n" + names[-1])', "names.append(b'n' - names[-1])"),
        (15, "clamp", "string", 'names.append(b"n" + names[-1])', "names.append(b'' + names[-1])"),
        (15, "clamp", "unary", 'names.append(b"n" + names[-1])', 'names.append(b"n" + names[1])'),
        (15, "clamp", "number", 'names.append(b"n" + names[-1])', 'names.append(b"n" + names[-2])'),
        (15, "clamp", "number", 'names.append(b"n" + names[-1])', 'names.append(b"n" + names[-0])'),
        (17, "clamp", "boolean", 'if name is None or name in "":', "if name is None and name in '':"),
        (17, "clamp", "compare", 'if name is None or name in "":', 'if name is not None or name in "":'),
        (17, "clamp", "compare", 'if name is None or name in "":', "if name is None or name not in '':"),
        (17, "clamp", "string", 'if name is None or name in "":', "if name is None or name in 'XX':"),
        (18, "clamp", "loop", "continue", "break"),
        (19, "clamp", "loop", "break", "continue"),
        (20, "clamp", "return", "return x", "return None"),
    ]


def test_each_mutant_changes_one_statement_and_only_it() -> None:
    original = ast.parse(SAMPLE).body
    codes = set()
    for mutant in generate(SAMPLE):
        code = apply(SAMPLE, mutant)
        codes.add(code)
        body = ast.parse(code).body
        assert len(body) == len(original)
        changed = [a for a, b in zip(original, body, strict=True) if ast.dump(a) != ast.dump(b)]
        assert len(changed) == 1, mutant
        assert changed[0].lineno <= mutant.line <= (changed[0].end_lineno or 0), mutant
    assert len(codes) == len(generate(SAMPLE))
    assert ast.dump(ast.parse(unchanged(SAMPLE))) == ast.dump(ast.parse(SAMPLE))


def test_identical_changes_in_one_scope_are_told_apart() -> None:
    source = "def f(a):\n    a += 1\n    a += 1\n    return a\n"
    deletions = [m for m in generate(source) if m.operator == "delete"]
    assert [(m.line, m.occurrence) for m in deletions] == [(2, 0), (3, 1)]
    assert deletions[0].key == ("f", "a += 1", "pass", 0)


def test_the_configuration_names_tests_that_exist() -> None:
    config = load_config()
    assert "qr/tlv.py" in config.tests
    for module, files in config.tests.items():
        assert (runner.ROOT / module).is_file(), module
        assert all((runner.ROOT / name).is_file() for name in files), module
    for equivalent in config.equivalents:
        assert equivalent.reason
        assert equivalent.module in config.tests


def test_an_equivalent_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mutation.toml"
    path.write_text(
        '[tests]\n[[equivalent]]\nmodule = "a.py"\nscope = "f"\noriginal = "x"\nmutated = "y"\nreason = ""\n'
    )
    with pytest.raises(runner.MutationError, match="gives no reason"):
        load_config(path)


TOY_MODULE = '''def clamp(x, limit):
    """Return x, or limit when x is larger."""
    if x > limit:
        return limit
    return x


def count_down(n):
    """Return n - 1 down to 0."""
    out = []
    while n > 0:
        n -= 1
        out.append(n)
    return out
'''
TOY_TESTS = """from calc import clamp, count_down


def test_clamp():
    assert clamp(5, 3) == 3
    assert clamp(1, 3) == 1


def test_count_down():
    assert count_down(3) == [2, 1, 0]
"""


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a small project with one module and its tests; copies go to a watched directory."""
    project = tmp_path / "toy"
    project.mkdir()
    (project / "calc.py").write_text(TOY_MODULE)
    (project / "test_calc.py").write_text(TOY_TESTS)
    (project / "pytest.ini").write_text("[pytest]\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return project


def test_a_run_classifies_every_mutant_and_leaves_the_project_alone(toy: Path) -> None:
    before = (toy / "calc.py").read_bytes()
    mutants = generate(TOY_MODULE)
    boundary = next(m for m in mutants if m.mutated == "if x >= limit:")
    hang = next(m for m in mutants if m.original == "n -= 1" and m.operator == "delete")
    chosen = [m.index for m in mutants if m.scope == "clamp"] + [hang.index]
    report = run_module(
        "calc.py",
        ["test_calc.py"],
        [
            Equivalent("calc.py", "clamp", "return x", "return None", "a deliberately wrong entry"),
            Equivalent("calc.py", "clamp", "gone", "gone", "not a mutant any more"),
        ],
        root=toy,
        jobs=2,
        min_timeout=5.0,
        only=chosen,
        progress=False,
    )
    assert report["generated"] == len(chosen)
    assert [s["index"] for s in report["survivors"]] == [boundary.index]
    assert report["survivors"][0] == {**boundary.to_dict()}
    assert [t["index"] for t in report["timeouts"]] == [hang.index]
    assert report["killed"] == len(chosen) - 2
    assert report["equivalent"] == 0
    assert report["score"] == round((len(chosen) - 1) / len(chosen), 4)
    assert report["stale_equivalents"] == [
        {"scope": "clamp", "original": "return x", "why": "killed"},
        {"scope": "clamp", "original": "gone", "why": "not generated"},
    ]
    assert (toy / "calc.py").read_bytes() == before
    assert list(Path(tempfile.tempdir or "").iterdir()) == []


def test_an_equivalent_survivor_leaves_the_score(toy: Path) -> None:
    boundary = next(m for m in generate(TOY_MODULE) if m.mutated == "if x >= limit:")
    report = run_module(
        "calc.py",
        ["test_calc.py"],
        [Equivalent("calc.py", "clamp", boundary.original, boundary.mutated, "clamp(3, 3) is 3 either way")],
        root=toy,
        only=[boundary.index],
        progress=False,
    )
    assert report["equivalent"] == 1
    assert report["survived"] == 0
    assert report["score"] == 1.0
    assert report["equivalents"] == [{**boundary.to_dict(), "reason": "clamp(3, 3) is 3 either way"}]


def test_an_interrupted_run_kills_its_tests_and_deletes_its_copies(
    toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (toy / "calc.py").read_bytes()
    real_run = Sandbox.run
    calls: list[Path] = []
    after_interrupt: list[str] = []

    def interrupted(self: Sandbox, tests: list[str], timeout: float) -> runner.Outcome:
        calls.append(self.path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        if len(calls) > 2:
            try:
                outcome = real_run(self, tests, timeout)
            except runner.MutationError:
                after_interrupt.append("refused")
                raise
            after_interrupt.append(outcome.status)
            return outcome
        return real_run(self, tests, timeout)

    monkeypatch.setattr(Sandbox, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_module("calc.py", ["test_calc.py"], [], root=toy, progress=False)
    # A mutant the worker picked up before the interrupt reached it starts no test run.
    assert set(after_interrupt) <= {"refused"}
    assert (toy / "calc.py").read_bytes() == before
    assert not any(path.exists() for path in calls)


def test_a_failing_baseline_is_an_error_not_a_score(toy: Path) -> None:
    (toy / "test_calc.py").write_text(TOY_TESTS + "\n\ndef test_broken():\n    assert clamp(5, 3) == 5\n")
    with pytest.raises(runner.MutationError, match="fail without any mutant"):
        run_module("calc.py", ["test_calc.py"], [], root=toy, progress=False)


def test_command_line_lists_and_shows_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr/tlv.py", "--list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["module"] == "qr/tlv.py"
    boundary = next(m for m in listed["mutants"] if m["mutated"] == "if len(value) >= 99:")
    assert main(["qr/tlv.py", "--show", str(boundary["index"])]) == 0
    diff = capsys.readouterr().out
    assert "-    if len(value) > 99:\n+    if len(value) >= 99:\n" in diff
    with pytest.raises(SystemExit):
        main(["no/such/module.py"])
