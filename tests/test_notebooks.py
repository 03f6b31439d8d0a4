"""The notebooks run top to bottom, offline, on a small data folder (a Jupyter kernel, DuckDB over the Parquet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.render.test_report import RUDE, build_data

nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (dev extra)")
nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (dev extra)")
pytest.importorskip("ipykernel", reason="ipykernel not installed (dev extra)")
pytest.importorskip("duckdb", reason="duckdb not installed")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str, data: Path, monkeypatch) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert nb.cells[0].cell_type == "markdown"  # explained, not just code
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    monkeypatch.setenv("QA_DATA", str(data))
    monkeypatch.delenv("QA_WEEK", raising=False)
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("nb") / "data")


def test_weekly_scorecards_notebook(data, monkeypatch):
    out = _run("weekly_scorecards.ipynb", data, monkeypatch)
    assert "week shown below: 2026-W48" in out
    assert "A02" in out and "41.2" in out and "north" in out and "south" in out
    assert "n48-bad" in out  # the call behind A02's deductions


def test_flag_exploration_notebook(data, monkeypatch):
    out = _run("flag_exploration.ipynb", data, monkeypatch)
    assert "forbidden_phrase" in out and "customer_complaint" in out
    assert "pending: not counted" in out
    assert RUDE[:20] in out  # the utterance behind the high-severity flag
    assert "01:09-01:13" in out


def test_notebooks_default_to_qa_data_beside_the_repository():
    for path in NOTEBOOKS.glob("*.ipynb"):
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        assert 'os.environ.get("QA_DATA", "../qa-data")' in source, path.name
        assert "hive_partitioning = true" in source
