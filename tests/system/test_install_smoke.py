"""What `pip install .` gives, without the lock: every dependency the code imports is declared
in pyproject.toml with the range it is tested with (lower bound = the lock's pin), and an
OpenCV that cannot detect faces (OpenCV 5: no Haar cascades; none at all) is a clear error
naming its version, exit 27, never ``internal error (AttributeError)``.

The install itself (a clean venv from pyproject.toml, then the README's first commands) is
``scripts/install-smoke``, which ``scripts/test`` runs on every full run."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.card_print import portrait_bytes
from tests.support.cli_runner import Cli
from tests.support.settings import SAMPLE_CSV

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("idsvc", "cardio", "keys", "mobile_api")
PERSON = "LA-MOHA-000101"


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(line) for line in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(line) for line in extra]
    return {canonicalize_name(r.name): r for r in reqs}


def lock(name: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            dist, _, version = line.partition("==")
            pins[canonicalize_name(dist)] = Version(version.strip())
    return pins


def test_every_dependency_has_its_tested_range() -> None:
    runtime, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    problems = []
    for name, req in declared().items():
        lower = [s for s in req.specifier if s.operator == ">="]
        upper = [s for s in req.specifier if s.operator == "<"]
        if len(lower) != 1 or len(upper) != 1 or len(req.specifier) != 2:
            problems.append(f"{name}: {req.specifier or 'no range'} (wanted >=LOCKED,<NEXT)")
            continue
        pinned = runtime.get(name)
        if pinned is None or Version(lower[0].version) != pinned:
            problems.append(f"{name}: lower bound {lower[0].version}, lock has {pinned}")
        if pinned is not None and pinned not in req.specifier:
            problems.append(f"{name}: the lock's {pinned} is outside {req.specifier}")
        if dev.get(name) != pinned:
            problems.append(f"{name}: requirements-dev.lock has {dev.get(name)}, not {pinned}")
    assert not problems, problems


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - set(PACKAGES)


def test_every_imported_distribution_is_declared() -> None:
    # A package that is only there because another one needs it today (click came with
    # uvicorn) can vanish or jump a major version under a lock-free install.
    owners = packages_distributions()
    names = declared()
    missing = {
        module: owners.get(module)
        for module in _imported_top_level_modules()
        if not any(canonicalize_name(d) in names for d in owners.get(module, []))
    }
    assert not missing, missing


def _stub_opencv(folder: Path, body: str) -> Path:
    (folder / "cv2").mkdir(parents=True)
    (folder / "cv2" / "__init__.py").write_text(body, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("cv2_module", "message"),
    [
        # What opencv-python-headless 5.1.0.95 is to us: a cv2 without CascadeClassifier (and
        # without cv2/data/*.xml); its face detector is FaceDetectorYN (YuNet, a model file).
        (
            "__version__ = '5.1.0'\nclass FaceDetectorYN: ...\n",
            r"OpenCV 5\.1\.0 has no Haar-cascade face detector \(cv2\.CascadeClassifier",
        ),
        ("raise ImportError('libGL.so.1: cannot open shared object file')\n", r"OpenCV is not"),
    ],
    ids=["opencv-5", "opencv-broken"],
)
def test_an_opencv_without_haar_cascades_is_a_clear_error(
    tmp_path: Path, cv2_module: str, message: str
) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'idsvc.sqlite3'}")
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    assert cli("issue", PERSON).returncode == 0
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(portrait_bytes())
    stub = _stub_opencv(tmp_path / "opencv5", cv2_module)

    r = cli("photo", PERSON, str(photo), env={"PYTHONPATH": str(stub)})
    assert r.returncode == 27, (r.returncode, r.stderr)
    assert re.search(message, r.stderr), r.stderr
    assert "opencv-python-headless>=4.14,<5" in r.stderr
    assert "internal error" not in r.stderr
    # Nothing was stored; with the OpenCV 4 the lock pins, the same photo is taken.
    assert "no photo" in cli("card-face", PERSON, "-o", str(tmp_path / "c.png")).stderr
    r = cli("photo", PERSON, str(photo))
    assert r.returncode == 0, r.stderr
