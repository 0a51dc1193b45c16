"""Bundles libvolley.so into the package: VOLLEY_LIB if set, else the
repository's cargo build (made here when missing). Everything else is in
pyproject.toml."""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def library() -> Path:
    env = os.environ.get("VOLLEY_LIB")
    if env:
        return Path(env)
    built = ROOT / "target" / "release" / "libvolley.so"
    if not built.exists():
        if not (ROOT / "Cargo.toml").exists() or not shutil.which("cargo"):
            raise SystemExit("volley: no libvolley.so: set VOLLEY_LIB, or install from the source tree with cargo")
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "volley-ffi"], cwd=ROOT, check=True)
    return built


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        dst = Path(self.build_lib) / "volley" / "libvolley.so"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library(), dst)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
