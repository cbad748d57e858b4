"""The README's examples run as written (those that need only data they name)."""

import os
import re

import numpy as np
import pandas as pd
import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", open(README).read(), flags=re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"expected one README block with {containing!r}"
    return found[0]


def _events(tmp_path, monkeypatch) -> None:
    """The README's ``events/`` (three Parquet files of user_id and amount), in the cwd."""
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / "events")
    for i in range(3):
        pd.DataFrame({"user_id": rng.integers(0, 50, 1000), "amount": rng.random(1000)}).to_parquet(
            tmp_path / "events" / f"part-{i}.parquet")
    monkeypatch.chdir(tmp_path)


def test_the_dask_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("dask.dataframe")
    _events(tmp_path, monkeypatch)
    scope: dict = {}
    exec(_block("shuffle_kit.dask.groupby_apply"), scope)
    events = pd.read_parquet(tmp_path / "events")
    got = scope["totals"].compute(scheduler="sync").sort_index()
    want = events.groupby("user_id")["amount"].sum()
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy())
    assert list(got.index) == list(want.index)
    joined = scope["joined"].compute(scheduler="sync")
    assert len(joined) == len(events) and set(joined["tier"]) == {"a", "b"}


def test_the_polars_example_runs(tmp_path, monkeypatch):
    pl = pytest.importorskip("polars")
    _events(tmp_path, monkeypatch)
    scope: dict = {}
    exec(_block("as_polars=True"), scope)
    events = pl.read_parquet(tmp_path / "events")
    assert scope["users"].sort("user_id", "amount").equals(events.sort("user_id", "amount"))
    assert scope["summary"].rows_out == 3000 and len(os.listdir(tmp_path / "by_user")) == 8


def test_the_sort_example_runs(tmp_path, monkeypatch):
    _events(tmp_path, monkeypatch)
    events = pd.read_parquet(tmp_path / "events")
    df = pd.DataFrame({"day": np.arange(100) % 9, "x": np.arange(100)})
    scope: dict = {"sk": __import__("shuffle_kit"), "df": df}
    exec(_block("sk.sort_values("), scope)
    want = events.sort_values(["user_id", "amount"], ascending=[True, False], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(scope["ordered"], want)
    back = pd.concat([pd.read_parquet(tmp_path / "sorted" / f) for f in sorted(os.listdir(tmp_path / "sorted"))])
    assert back["amount"].tolist() == want["amount"].tolist()
    assert len(scope["parts"].boundaries) == 7
