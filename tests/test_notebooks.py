"""The notebooks of `notebooks/` run from top to bottom in tiny mode (SPEC §5).

Each notebook is executed by a real Jupyter kernel (nbclient, kernel `python3` of this
interpreter: ipykernel ships its kernel spec, and jupyter_client starts it with
`sys.executable`) from the `notebooks/` folder, with `POSE_KERAS_NOTEBOOK_TINY=1` and
`POSE_KERAS_NOTEBOOK_OUTPUT` pointing into pytest's temporary folder, so nothing is
written into the repository. A cell that raises fails the test with its traceback; then
the files the notebook wrote and the outputs of its tagged cells are checked.
"""

import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow  # about a minute per notebook on 2 CPU cores

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MPII_TABLE_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
TINY_EPOCHS = 2


def execute(name, output_dir, monkeypatch, shared_data=None):
    """Run `notebooks/<name>.ipynb` in tiny mode; returns the executed notebook (also
    written to `output_dir/<name>.executed.ipynb`)."""
    monkeypatch.setenv("POSE_KERAS_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("POSE_KERAS_NOTEBOOK_OUTPUT", str(output_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    if shared_data is not None:
        monkeypatch.setenv("POSE_KERAS_SHARED_DATA", str(shared_data))
    # Jupyter's and IPython's per-user folders in the temporary folder: a user-level
    # `python3` kernel spec pointing at another interpreter cannot be picked up, and the
    # kernel's connection file and history stay out of the home folder.
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    for variable, folder in (
        ("JUPYTER_DATA_DIR", "jupyter_data"),
        ("JUPYTER_CONFIG_DIR", "jupyter_config"),
        ("JUPYTER_RUNTIME_DIR", "jupyter_runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        monkeypatch.setenv(variable, str(output_dir / folder))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    finally:  # kept beside the outputs for a look after a failure
        nbformat.write(notebook, output_dir / f"{name}.executed.ipynb")
    return notebook


def tagged_cell(notebook, tag):
    cells = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def result_text(cell) -> str:
    """The plain-text rendering of a cell's result (its last expression)."""
    results = [output for output in cell.outputs if output.output_type == "execute_result"]
    assert results, "the cell shows no result"
    return results[-1]["data"]["text/plain"]


def table_columns(cell) -> list:
    """Column names of the DataFrame a cell shows (from its HTML rendering, which pandas
    never wraps), without the index column."""
    html = next(
        output["data"]["text/html"]
        for output in cell.outputs
        if output.output_type == "execute_result" and "text/html" in output["data"]
    )
    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    return [name for name in re.findall(r"<th>(.*?)</th>", head) if name]


def has_image(cell) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def check_run(run_dir: Path, monitor: str, joint_set: str) -> dict:
    """The run directory of a finished tiny `fit`: its metrics, config and model."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["input_size"] == 64 and config["model"]["stacks"] == 1
    assert config["train"]["epochs"] == metrics["planned_epochs"] == TINY_EPOCHS
    assert [entry["epoch"] for entry in metrics["epochs"]] == list(range(TINY_EPOCHS))
    assert metrics["monitor"] == monitor and metrics["joint_set"] == joint_set
    assert all(0 <= entry[monitor] <= 100 for entry in metrics["epochs"])
    assert (run_dir / "model.keras").is_file()
    return metrics


def test_quickstart_trains_evaluates_and_predicts(tmp_path, monkeypatch, shared_data):
    notebook = execute("quickstart", tmp_path, monkeypatch, shared_data)

    run_dir = tmp_path / "quickstart"
    check_run(run_dir, "val_pckh", "mpii")
    # The synthetic data went to the notebook's own cache, not the repository's.
    assert list((tmp_path / "cache").glob("synthetic-*/val.manifest.json"))

    evaluation = tagged_cell(notebook, "evaluation-table")
    assert table_columns(evaluation) == [*MPII_TABLE_COLUMNS, "Mean@0.1"]
    table = result_text(evaluation)
    assert "pose_keras, synthetic val" in table and "Ke et al. 2018" in table
    report = json.loads((run_dir / "evaluation" / "val" / "metrics.json").read_text())
    assert report["protocol"] == "PCKh@0.5" and report["people"] == 16
    assert set(report["columns"]) == {*MPII_TABLE_COLUMNS, "Mean@0.1"}

    prediction = tagged_cell(notebook, "prediction")
    assert has_image(prediction)
    assert "r_ankle" in result_text(prediction)  # the per-joint keypoints table
    assert not any("not found" in output.get("text", "") for output in prediction.outputs), (
        "the notebook did not find the real MPII image in shared/data"
    )


def test_custom_dataset_converts_trains_and_scores_pck(tmp_path, monkeypatch):
    notebook = execute("custom_dataset", tmp_path, monkeypatch)

    for split, people in (("train", 48), ("val", 16)):
        manifest = json.loads((tmp_path / "records" / f"{split}.manifest.json").read_text())
        assert manifest["count"] == people
        assert manifest["joint_set"]["name"] == "kite"
        assert manifest["joint_set"]["flip_pairs"] == [[3, 4]]
    assert result_text(tagged_cell(notebook, "conversion")) == "{'train': 48, 'val': 16}"

    check_run(tmp_path / "run", "val_pck", "kite")

    batch = tagged_cell(notebook, "batch")
    assert has_image(batch)
    evaluation = tagged_cell(notebook, "evaluation-table")
    assert table_columns(evaluation) == ["Head", "Hub", "Foot", "Tips", "Mean"]
    printed = "".join(output.get("text", "") for output in evaluation.outputs)
    assert printed.startswith("PCK@0.2 per joint:")
