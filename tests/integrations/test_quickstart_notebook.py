"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel,
headless) and its outputs are the rich renderings: tables of results, the answer with linked
citations, the map in an iframe, LangChain and scikit-learn cells with real results."""
from __future__ import annotations

import sys

import pytest

nbformat = pytest.importorskip("nbformat", reason="install nearspace[notebook]")
nbclient = pytest.importorskip("nbclient", reason="install nearspace[notebook]")
pytest.importorskip("ipykernel", reason="install nearspace[notebook]")
pytest.importorskip("langchain_core", reason="install nearspace[langchain]")

from tests.conftest import ROOT  # noqa: E402

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _outputs(cell) -> tuple[str, str]:
    """(text/html, text/plain and stream text) of one executed cell."""
    html = "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)
    plain = "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in cell.outputs)
    return html, plain


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_quickstart_notebook_runs_in_a_kernel(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    if spec.argv[0] not in (sys.executable, "python", "python3"):
        pytest.skip(f"the python3 kernel runs {spec.argv[0]}, not this environment's {sys.executable}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary store lands in the test's folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails
    cells = {c.source.splitlines()[0]: c for c in nb.cells if c.cell_type == "code"}

    def out(prefix: str) -> tuple[str, str]:
        [cell] = [c for first, c in cells.items() if first.startswith(prefix)]
        return _outputs(cell)

    assert list(tmp_path.glob("*/quickstart.db"))  # the store was made where TMPDIR pointed
    html, plain = out("import tempfile")
    assert "Collection(name='docs', count=60" in plain
    for prefix, mode in (('query = "', "dense"), ('docs.search(query, k=5, mode="keyword")', "keyword"),
                         ("hits = docs.search", "hybrid")):
        html, plain = out(prefix)
        assert f"({mode}, 5 results)" in html and html.count("<tr>") == 6
        assert "regularization-techniques" in html  # the seed query's best document, in every mode
        assert plain.startswith(f"5 results for 'how to reduce overfitting in neural networks' ({mode}):")
    html, _ = out('docs.search("planets')
    assert "astronomy" in html and "cooking" not in html
    html, _ = out("docs.ask(")
    assert "What does dropout do during training?" in html and "<mark>" in html and "href='#ns" in html
    assert "dropout" in html.lower()
    html, plain = out("from nearspace.analyze.maps import build_map")
    assert html.startswith("<iframe srcdoc=") and plain.startswith("MapData(60 points, PCA, coloured by 'topic'")
    _, plain = out("from nearspace.integrations.langchain")
    assert "regularization-techniques" in plain and "machine-learning" in plain
    _, plain = out("from sklearn.linear_model")
    assert "'astronomy'" in plain and "'cooking'" in plain
