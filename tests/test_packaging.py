"""The built wheel is complete and works on its own: every package directory is listed in
pyproject.toml, every pass module and target YAML is in the wheel, and the wheel installed
(non-editable) in a fresh venv runs `nirc --help` and `nirc inspect`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nirc.ir.nodes import Affine, Input, LIF, NIRGraph, Output
from nirc.nirio import write

REPO = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def package_dirs() -> set[str]:
    """Import names of every directory holding Python code under a mapped source root
    (with or without __init__.py: setuptools skips an unlisted namespace directory too)."""
    found = set()
    for top, rel in pyproject()["tool"]["setuptools"]["package-dir"].items():
        root = REPO / rel
        for module in root.rglob("*.py"):
            if "__pycache__" not in module.parts:
                found.add(".".join((top, *module.parent.relative_to(root).parts)))
    return found


def test_every_package_directory_has_an_init_module():
    roots = pyproject()["tool"]["setuptools"]["package-dir"]
    missing = [name for name in sorted(package_dirs())
               if not (REPO / roots[_root_of(name, roots)] /
                       Path(*name.split(".")[len(_root_of(name, roots).split(".")):])
                       / "__init__.py").is_file()]
    assert missing == []


def _root_of(name: str, roots: dict[str, str]) -> str:
    """The longest package-dir key that ``name`` lies under."""
    return max((k for k in roots if name == k or name.startswith(k + ".")), key=len)


def test_every_package_directory_is_listed_in_pyproject():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    assert sorted(package_dirs() - listed) == []


def shipped_sources() -> list[str]:
    """Paths inside the wheel of every .py and .yaml file under passes/ and targets/."""
    roots = pyproject()["tool"]["setuptools"]["package-dir"]
    out = []
    for name in ("nirc.passes", "nirc.targets"):
        root = REPO / roots[name]
        for path in root.rglob("*"):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                out.append("/".join((*name.split("."), *path.relative_to(root).parts)))
    return sorted(out)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the shared tree gets no build/ directory)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for rel in ("nirc", "passes", "targets"):
        shutil.copytree(REPO / rel, src / rel, ignore=ignore)
    for rel in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / rel, src / rel)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--quiet", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("nirc-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_every_pass_module_and_target_yaml(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = shipped_sources()
    assert any(p.endswith(".yaml") for p in expected)
    assert [p for p in expected if p not in names] == []
    assert "nirc/nirio/reader.py" in names and "nirc/commands/inspect.py" in names


@pytest.mark.slow
def test_installed_wheel_runs_on_its_own_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--quiet", str(wheel)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    # Dependencies come from the shared venv (appended after the fresh site-packages; its
    # .pth files, including the editable nirc's finder, are not processed from there).
    fresh_site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "shared_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = subprocess.run([str(python), "-c", "import nirc; print(nirc.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert Path(where.strip()).is_relative_to(venv)
    yamls = subprocess.run(
        [str(python), "-c", "from importlib.resources import files; "
         "print(sorted(p.name for p in files('nirc.targets').iterdir() "
         "if p.name.endswith('.yaml')))"],
        capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert yamls.strip() == str(sorted(p.name for p in (REPO / "targets").glob("*.yaml")))

    nirc = venv / "bin" / "nirc"
    help_ = subprocess.run([str(nirc), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert help_.returncode == 0 and "inspect" in help_.stdout

    n = 3
    model = tmp_path / "model.nir"
    write(model, NIRGraph(
        nodes={"input": Input(shape=np.array([2])),
               "fc": Affine(weight=np.ones((n, 2)), bias=np.zeros(n)),
               "lif": LIF(tau=np.ones(n), r=np.ones(n), v_leak=np.zeros(n),
                          v_threshold=np.ones(n)),
               "output": Output(shape=np.array([n]))},
        edges=(("input", "fc"), ("fc", "lif"), ("lif", "output"))))
    shown = subprocess.run([str(nirc), "inspect", "--json", str(model)], capture_output=True,
                           text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert '"neurons": 3' in shown.stdout
