"""The layout of ``alignment_eval``: what each subpackage may import, where torch may enter, and the old paths.

Layering (see alignment_eval/README.md): alignments -> nothing of ours; baselines ->
alignments; analysis -> alignments + fairseq_plugins (+ torch); interpretability ->
analysis + alignments (+ fairseq_plugins, torch); every layer may use the torch-free
nmt_common. Imports inside functions are allowed only at the documented torch boundary, the
plotting boundary (matplotlib, in the functions that draw) and for the optional eflomal.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alignment_eval"
OURS = ("alignment_eval", "fairseq_plugins", "nmt_common", "mt_pipeline", "benchmarks")
TORCH_SIDE = ("torch", "fairseq", "fairseq_plugins", "sentencepiece")

#: Subpackage -> the packages of ours it may import.
MAY_IMPORT = {
    "alignments": ("nmt_common", "alignment_eval.alignments"),
    "baselines": ("nmt_common", "alignment_eval.alignments", "alignment_eval.baselines"),
    "analysis": ("nmt_common", "alignment_eval.alignments", "alignment_eval.analysis", "fairseq_plugins"),
    "interpretability": (
        "nmt_common", "alignment_eval.alignments", "alignment_eval.analysis", "alignment_eval.interpretability",
        "fairseq_plugins",
    ),
    "explorer": ("nmt_common", "alignment_eval.alignments", "alignment_eval.analysis", "alignment_eval.explorer"),
}
#: Subpackages that never touch the torch side, not even inside a function.
TORCH_FREE = ("alignments", "baselines")
#: The only imports allowed inside functions: module -> allowed import prefixes.
FUNCTION_LEVEL_IMPORTS = {
    "alignment_eval.analysis.model_attention": TORCH_SIDE,  # the torch boundary of analysis
    "alignment_eval.interpretability.cli": ("torch", "alignment_eval.interpretability.experiments"),  # and of interpret
    "alignment_eval.analysis.figures": ("matplotlib",),  # the plotting boundary (new_figure and the drawing)
    "alignment_eval.baselines.route_eflomal": ("eflomal",),  # an optional aligner
}
#: Heavy packages that importing ``alignment_eval.cli`` and building its parser must not load.
NOT_AT_STARTUP = ("torch", "fairseq", "matplotlib")
#: Old module path -> where it moved (a shim stays at the old path for one release).
MOVED = {
    "aer": "alignments.aer", "errors": "alignments.errors", "io": "alignments.io", "signature": "alignments.signature",
    "symmetrize": "alignments.symmetrize", "induce": "alignments.induce", "bench_aer": "alignments.bench_aer",
    "model_attention": "analysis.model_attention", "extract": "analysis.extract",
    "attention_stats": "analysis.attention_stats", "report": "analysis.report", "bench_extract": "analysis.bench_extract",
    "baseline": "baselines", "interpret": "interpretability.cli", "interpret_experiments": "interpretability.experiments",
    "interpret_measures": "interpretability.measures", "interpret_model": "interpretability.model",
    "interpret_report": "interpretability.report",
}
#: Old modules that imported torch when imported; every other shim must not.
TORCH_BOUND_OLD = ("interpret_experiments", "interpret_model")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module named by a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import statement of ``path``.

    ``from package import name`` counts as importing ``package.name`` when that is a module.
    """
    known = modules()
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(module, path, child)
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    found.append((candidate if candidate in known else base, inside))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in MAY_IMPORT) else ""


def within(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_torch_free_imports() -> None:
    """alignment_eval, alignment_eval.alignments and each of its modules, the CLI and the shims of
    torch-free modules import without torch (and without fairseq); the CLI, with its parser built,
    also without matplotlib (the torch and plotting boundaries keep ``alignment-eval --help`` fast)."""
    code = "\n".join([
        "import importlib, pkgutil, sys",
        "import alignment_eval, alignment_eval.alignments, alignment_eval.cli",
        "for info in pkgutil.iter_modules(alignment_eval.alignments.__path__):",
        "    importlib.import_module('alignment_eval.alignments.' + info.name)",
        "alignment_eval.cli.build_parser()  # registers every subcommand",
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {NOT_AT_STARTUP!r})",
        "assert not loaded, ('at startup', loaded[:10])",
        f"for old in {sorted(set(MOVED) - set(TORCH_BOUND_OLD))!r}:",
        "    importlib.import_module('alignment_eval.' + old)",
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'fairseq'))",
        "assert not loaded, loaded[:10]",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_each_subpackage_imports_only_what_its_layer_may() -> None:
    wrong = []
    for module, path in modules().items():
        layer = subpackage(module)
        if not layer:
            continue  # the package root (__init__, cli, shims) may use every subpackage
        for name, _ in imports(module, path):
            if within(name, OURS) and not within(name, MAY_IMPORT[layer]):
                wrong.append(f"{module} imports {name}")
            if layer in TORCH_FREE and within(name, (*TORCH_SIDE, "matplotlib")):
                wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_imports_inside_functions_are_the_documented_exceptions() -> None:
    hidden = [
        f"{module} imports {name} inside a function"
        for module, path in modules().items()
        for name, in_function in imports(module, path)
        if in_function and not within(name, FUNCTION_LEVEL_IMPORTS.get(module, ()))
    ]
    assert not hidden, "\n".join(hidden)


def test_no_import_cycles() -> None:
    """Module-level imports between our modules form no cycle."""
    known = modules()
    graph = {
        module: {name for name, in_function in imports(module, path) if not in_function and name in known}
        for module, path in known.items()
    }
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [module, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_paths_still_import(old: str) -> None:
    """Every moved module keeps a shim at its old path that re-exports the new module's API."""
    shim = importlib.import_module(f"alignment_eval.{old}")
    new = importlib.import_module(f"alignment_eval.{MOVED[old]}")
    assert shim.__doc__.startswith(f"Moved to :mod:`alignment_eval.{MOVED[old]}`")
    public = getattr(new, "__all__", [name for name in vars(new) if not name.startswith("_")])
    assert all(getattr(shim, name) is getattr(new, name) for name in public)


def test_private_names_other_code_used_are_kept() -> None:
    from alignment_eval import attention_stats, baseline
    from alignment_eval.analysis.attention_stats import entropy
    from alignment_eval.baselines.route_systran_align import SYSTRAN_MODULE
    from alignment_eval.baselines.viterbi import fast_align_viterbi

    assert baseline._fast_align_viterbi is fast_align_viterbi and baseline._SYSTRAN_MODULE == SYSTRAN_MODULE
    assert attention_stats._entropy is entropy


def test_old_benchmark_paths_still_run_as_scripts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alignment_eval.bench_aer", "--gold-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and f"gold files not found under {tmp_path}" in result.stderr
