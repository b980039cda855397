"""Every package folder is mapped into the ``policyqa`` namespace, so a wheel ships all of it."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("policyqa", "corpus", "index", "retriever", "answer", "api", "ui", "eval", "train")
#: The data folders shipped as packages of data files (no ``__init__.py``).
DATA_PACKAGES = {
    "policyqa.corpus.data": "corpus/data",
    "policyqa.index.data": "index/data",
    "policyqa.retriever.data": "retriever/data",
    "policyqa.answer.data": "answer/data",
}


def _setuptools() -> Any:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = _setuptools()
    mapping: dict[str, str] = config["package-dir"]
    code_packages = [name for name in config["packages"] if name not in DATA_PACKAGES]
    assert sorted(mapping) == sorted(code_packages)
    assert set(DATA_PACKAGES) <= set(config["packages"])
    folders = {
        str(init.parent.relative_to(ROOT)) for top in TOPS for init in (ROOT / top).rglob("__init__.py")
    }
    assert folders == set(mapping.values())
    assert all(name == "policyqa" or name.startswith("policyqa.") for name in config["packages"])


def test_every_shipped_data_file_is_package_data() -> None:
    config = _setuptools()
    data_folders = {
        str(p.parent.relative_to(ROOT)) for top in TOPS for p in (ROOT / top).rglob("data/*") if p.is_file()
    }
    assert data_folders == set(DATA_PACKAGES.values()), "a data folder is not listed as a package"
    for package, folder in DATA_PACKAGES.items():
        patterns: list[str] = config["package-data"][package]
        shipped = sorted(p.name for p in (ROOT / folder).iterdir() if p.is_file())
        assert shipped, folder
        for name in shipped:
            assert any(fnmatch.fnmatch(name, pat) for pat in patterns), f"{folder}/{name}"
    assert "reader_lora.safetensors" in {p.name for p in (ROOT / "answer" / "data").iterdir()}
