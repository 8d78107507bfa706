"""The complete new method of docs/developers.rst works and keeps the contract."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils import get_tags

from .test_training_stages import StepCounter


def test_the_new_method_learns(new_method_example):
    assert new_method_example["scores"]["new"] > 50
    assert {"train_critic", "train_adv", "train_kd"} <= set(
        new_method_example["student"].history_[-1]
    )


def test_the_new_method_keeps_the_engine_contract(new_method_example):
    cls = new_method_example["LogitCriticClassifier"]
    teacher = new_method_example["teacher"]
    assert get_tags(cls(teacher)).time_series.target == "required"
    d = new_method_example["d"]
    rows = np.concatenate([np.flatnonzero(d.y_src == k)[:2] for k in range(6)])
    X, y, X_tgt = d.X_src[rows], d.y_src[rows], d.X_tgt[:10]
    counter = StepCounter()
    est = cls(
        teacher=teacher.module_,
        module__widths=(4,),
        max_epochs=1,
        batch_size=4,
        callbacks=[("count", counter)],
        random_state=0,
    )
    with pytest.raises(ValueError, match="needs unlabelled target data"):
        clone(est).fit(X, y)
    est.fit(X, y, X_tgt)
    assert len(counter.batches) == 3
    for batch in counter.batches:
        assert batch["forward"] == 2 and batch["draws"] == 1
        assert batch["steps"] == {"optimizer": 1, "optimizer_critic": 1}
        assert batch["grads"] == {"critic": 1, "student": 1}
