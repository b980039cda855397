"""Every package folder is mapped into the ``policyqa`` namespace, so a wheel ships all of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping: dict[str, str] = config["package-dir"]
    assert sorted(mapping) == sorted(config["packages"])
    folders = {
        str(init.parent.relative_to(ROOT))
        for top in ("policyqa", "corpus", "index", "retriever", "api", "ui", "eval")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert folders == set(mapping.values())
    assert all(name == "policyqa" or name.startswith("policyqa.") for name in mapping)


def test_shipped_model_files_are_package_data() -> None:
    import fnmatch

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns: list[str] = config["package-data"]["policyqa.retriever"]
    shipped = sorted(p.name for p in (ROOT / "retriever" / "data").iterdir() if p.is_file())
    assert "reader_lora.safetensors" in shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(f"data/{name}", pat) for pat in patterns), name
