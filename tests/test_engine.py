"""The open engine: carried state in the chunk kernel, the cell seam, one way in, divergence accounting."""

import json

import numpy as np
import pandas as pd
import pytest

import fastrnn
from fastrnn import NumericalError, metrics


def test_a_diverging_chunk_keeps_a_row_for_the_iterations_applied_before_it(tmp_path):
    """Issue 9 item 3: iteration 1 of a 5-iteration chunk is applied, iteration 2 diverges."""
    path = tmp_path / "run.csv"
    with pytest.raises(NumericalError, match=r"NaN or infinite at iteration 2;") as info:
        fastrnn.train(task="digits", digits=3, iters=2000, optimizer="sgd", activation="relu", lr=1e300, clip=0,
                      log_every=5, csv=path)
    result = info.value.result
    assert result.status == "diverged" and result.iterations == 1
    frame = pd.read_csv(path)
    assert frame["iteration"].tolist() == [1] and frame["samples"].tolist() == [32]
    assert np.all(np.isfinite(frame["loss"]))
    assert json.loads(metrics.json_path_for(path).read_text())["result"]["iterations_done"] == 1
