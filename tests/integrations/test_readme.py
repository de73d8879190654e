"""The README's integration section is executable documentation: every ```python block in it
runs here (real model, real stores in a temporary folder), each subsection names an extra that
pyproject.toml really declares, and what the snippets print is what they claim."""
from __future__ import annotations

import re
import tomllib

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
SECTION = "## Where you already build: LangChain, LlamaIndex, scikit-learn, Arrow, notebooks"
#: the module each subsection's host library lives in (skip, naming the extra, when absent)
HOSTS = {"LangChain": "langchain_core", "LlamaIndex": "llama_index.core", "scikit-learn": "sklearn",
         "Arrow and Parquet": "pandas", "Notebooks": "nearspace"}


def _subsections() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, "the README lost its integrations section"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### (.+)$", body, flags=re.MULTILINE)
    return {title.strip(): content for title, content in zip(parts[1::2], parts[2::2])}


def _code(content: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", content, flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one python block, found {len(blocks)}"
    return blocks[0]


def test_every_integration_has_a_runnable_example_and_a_real_extra():
    sections = _subsections()
    assert set(sections) == set(HOSTS)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for title, content in sections.items():
        _code(content)
        for named in re.findall(r"pip install 'nearspace\[([a-z,-]+)\]'", content):
            for extra in named.split(","):
                assert extra in extras, f"README section {title!r} names extra {extra!r}, not in pyproject.toml"
        assert "pip install 'nearspace[" in content or "No extra" in content, title


@pytest.mark.parametrize("title", list(HOSTS))
def test_readme_example_runs(title, tmp_path, monkeypatch, capsys):
    pytest.importorskip(HOSTS[title], reason=f"the README's {title} example needs its extra")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(_code(_subsections()[title]), f"README.md ({title})", "exec"), namespace)
    out = capsys.readouterr().out
    if title == "LangChain":
        assert {d.metadata["topic"] for d in namespace["found"]} == {"ml"}
        assert set(eval(out.splitlines()[0])) <= {"a", "c"}  # the two regularisation notes
        assert "Tides rise twice a day." in out
    elif title == "LlamaIndex":
        assert "Dropout randomly silences units" in out.splitlines()[0]
    elif title == "scikit-learn":
        assert out.strip() == "['ml' 'cooking']"
    elif title == "Arrow and Parquet":
        assert "vector: fixed_size_list<item: float>[384]" in out
        assert "'tags': ['bread']" in out and out.splitlines()[-1] == "b"
        copy = namespace["copy"].collection("notes")
        assert (copy.vector_of("a") == namespace["docs"].vector_of("a")).all()
    elif title == "Notebooks":
        assert out.splitlines()[0] == "2 results for 'regularisation' (hybrid):"
        assert "<table>" in namespace["hits"]._repr_html_()
        assert "<mark>" in namespace["answer"]._repr_html_()
        assert namespace["picture"]._repr_html_().startswith("<iframe srcdoc=")
