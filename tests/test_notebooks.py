"""Every notebook in notebooks/ runs top to bottom, at a tiny scale.

A notebook declares its scale in one cell tagged 'parameters' (papermill's
convention). The test keeps that cell and adds right after it a cell that
rebinds the names below which the notebook defines, so the notebook's own
defaults stay visible while the run takes seconds. The kernel inherits this
process's environment (the shared compilation cache, cheap XLA compiles)
but sees one CPU device: the walkthroughs are single-device, and 8 emulated
devices would only multiply their compile and step times.
"""

import ast
import glob
import os

import nbclient
import nbformat
import pytest

from helpers import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))

# Names a notebook may use for its scale, and their tiny values.
SMALL = dict(TRAIN_SIZE=256, TEST_SIZE=64, STEPS=6, BATCH_SIZE=32, KNN_KS=(1, 3),
             KNN_FOLDS=2)


def _small_settings_cell(nb, tmp_path) -> tuple[int, nbformat.NotebookNode]:
    """(index of the parameters cell, a cell rebinding its names to tiny values)."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise AssertionError(f"a notebook needs exactly one cell tagged 'parameters' "
                             f"(found {len(tagged)}) so that this test can shrink it")
    defined = {t.id for node in ast.parse(nb.cells[tagged[0]].source).body
               if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    settings = {k: v for k, v in SMALL.items() if k in defined}
    settings.update(DATA_DIR=str(tmp_path / "tfds"), WORKDIR=str(tmp_path / "work"))
    source = "\n".join(f"{k} = {v!r}" for k, v in settings.items() if k in defined)
    return tagged[0], nbformat.v4.new_code_cell(source)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    index, small = _small_settings_cell(nb, tmp_path)
    nb.cells.insert(index + 1, small)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", "").replace(
        "--xla_force_host_platform_device_count=8", ""))
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, on any error
