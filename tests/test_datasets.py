"""Tests for skkd.datasets."""

import hashlib
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skkd.datasets import (
    EMBEDDED_SUBJECTS,
    HAR_ADDITIONAL_SCENARIOS,
    HAR_CHANNEL_NAMES,
    HAR_MAIN_SCENARIOS,
    HAR_TARGET_NAMES,
    get_data_home,
    load_adatime_pt,
    load_har_scenario,
    load_uci_har,
    make_domain_shift,
)
from skkd.datasets._uci_har import _parse_scenario

pytestmark = pytest.mark.usefixtures("no_env_data_home")

# The shared data live next to the checkout, never imported by the package.
SHARED_HAR = Path(__file__).parents[2] / "shared" / "data" / "uci_har"
needs_shared = pytest.mark.skipif(
    not (SHARED_HAR / "subject_02.npz").is_file(),
    reason=f"shared UCI-HAR folder not found at {SHARED_HAR}",
)

COUNTS = {2: (211, 91), 11: (221, 95)}
KEYS = ("X_train", "y_train", "X_test", "y_test")


def _embedded_path(subject):
    name = f"uci_har_subject_{subject:02d}.npz"
    return resources.files("skkd.datasets").joinpath("data", name)


def _write_npz(path, subject_arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **subject_arrays)


def _fake_arrays(n_train=5, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X_train": rng.standard_normal((n_train, 9, 128)).astype(np.float32),
        "y_train": rng.integers(0, 6, n_train),
        "X_test": rng.standard_normal((n_test, 9, 128)).astype(np.float32),
        "y_test": rng.integers(0, 6, n_test),
    }


# --------------------------------------------------------------- data home
def test_get_data_home_argument_env_default(monkeypatch, tmp_path):
    assert get_data_home(tmp_path) == tmp_path
    assert isinstance(get_data_home(str(tmp_path)), Path)
    assert get_data_home() == Path("~/skkd_data").expanduser()
    monkeypatch.setenv("SKKD_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    # The argument wins over the environment variable.
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("SKKD_DATA", "")
    assert get_data_home() == Path("~/skkd_data").expanduser()


def test_get_data_home_expands_user():
    assert get_data_home("~/x") == Path.home() / "x"


# --------------------------------------------------------------- embedded
@pytest.mark.parametrize("subject", EMBEDDED_SUBJECTS)
def test_embedded_fallback_with_empty_data_home(tmp_path, subject):
    data = load_uci_har(subject, data_home=tmp_path)
    n_train, n_test = COUNTS[subject]
    assert data.X_train.shape == (n_train, 9, 128)
    assert data.X_test.shape == (n_test, 9, 128)
    assert data.y_train.shape == (n_train,)
    assert data.y_test.shape == (n_test,)
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert set(np.unique(data.y_train)) <= set(range(6))
    assert data.subject == subject
    assert data.channel_names == list(HAR_CHANNEL_NAMES)
    assert data.channel_names[0] == "body_acc_x"
    assert data.channel_names[-1] == "total_acc_z"
    assert data.target_names == [
        "walking",
        "walking_upstairs",
        "walking_downstairs",
        "sitting",
        "standing",
        "lying",
    ]
    assert "embedded" in data.filename
    assert "Anguita" in data.DESCR and "CC BY 4.0" in data.DESCR
    assert "AdaTime" in data.DESCR or "ADATIME" in data.DESCR


def test_embedded_files_small_and_documented():
    readme = resources.files("skkd.datasets").joinpath("data", "README.txt")
    readme = readme.read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "Anguita" in readme and "AdaTime" in readme
    for subject in EMBEDDED_SUBJECTS:
        with resources.as_file(_embedded_path(subject)) as p:
            assert p.stat().st_size < 2_000_000
            # The README says the copies are byte-identical to the sources.
            assert hashlib.sha256(p.read_bytes()).hexdigest() in readme


@needs_shared
@pytest.mark.parametrize("subject", EMBEDDED_SUBJECTS)
def test_embedded_equals_shared(subject):
    with resources.as_file(_embedded_path(subject)) as p, np.load(p) as emb:
        with np.load(SHARED_HAR / f"subject_{subject:02d}.npz") as ref:
            for key in KEYS:
                assert emb[key].dtype == ref[key].dtype
                np.testing.assert_array_equal(emb[key], ref[key])


@needs_shared
@pytest.mark.parametrize("subject", EMBEDDED_SUBJECTS)
def test_readme_sha256_matches_shared_file(subject):
    name = f"subject_{subject:02d}.npz"
    digest = hashlib.sha256((SHARED_HAR / name).read_bytes()).hexdigest()
    readme = resources.files("skkd.datasets").joinpath("data", "README.txt")
    assert f"{digest}  {name}" in readme.read_text(encoding="utf-8")


# --------------------------------------------------------------- shared folder
@needs_shared
@pytest.mark.parametrize("home", [SHARED_HAR, SHARED_HAR.parent])
def test_load_from_shared_folder(home):
    data = load_uci_har(5, data_home=home)
    assert data.X_train.shape == (211, 9, 128)
    assert data.X_test.shape == (91, 9, 128)
    assert str(SHARED_HAR / "subject_05.npz") == data.filename


@needs_shared
def test_load_via_env_var(monkeypatch):
    monkeypatch.setenv("SKKD_DATA", str(SHARED_HAR))
    data = load_uci_har(11)
    assert data.filename == str(SHARED_HAR / "subject_11.npz")
    assert data.X_train.shape == (221, 9, 128)


def test_load_via_env_var_tmp(monkeypatch, tmp_path):
    arrays = _fake_arrays()
    _write_npz(tmp_path / "uci_har" / "subject_07.npz", arrays)
    monkeypatch.setenv("SKKD_DATA", str(tmp_path))
    data = load_uci_har(7)
    np.testing.assert_array_equal(data.X_train, arrays["X_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.y_train.dtype == np.int64


def test_data_home_file_takes_precedence_over_embedded(tmp_path):
    arrays = _fake_arrays(n_train=4, n_test=2)
    _write_npz(tmp_path / "subject_02.npz", arrays)
    data = load_uci_har(2, data_home=tmp_path)
    assert data.X_train.shape == (4, 9, 128)
    assert data.filename == str(tmp_path / "subject_02.npz")


def test_uci_har_subfolder_searched_before_flat(tmp_path):
    _write_npz(tmp_path / "uci_har" / "subject_03.npz", _fake_arrays(n_train=4))
    _write_npz(tmp_path / "subject_03.npz", _fake_arrays(n_train=6))
    assert load_uci_har(3, data_home=tmp_path).X_train.shape[0] == 4


# --------------------------------------------------------------- errors
def test_missing_subject_message(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        load_uci_har(5, data_home=tmp_path)
    msg = str(excinfo.value)
    assert str(tmp_path / "uci_har" / "subject_05.npz") in msg
    assert str(tmp_path / "subject_05.npz") in msg
    assert "train_5.pt" in msg
    assert "data_home" in msg and "SKKD_DATA" in msg
    assert "subject_XX.npz" in msg


@pytest.mark.parametrize("subject", [0, 31, -1, 2.0, "2", None, True])
def test_invalid_subject(subject):
    with pytest.raises(ValueError, match="subject must be an integer between 1"):
        load_uci_har(subject)


def test_numpy_integer_subject_accepted(tmp_path):
    assert load_uci_har(np.int64(2), data_home=tmp_path).subject == 2


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"X_train": np.zeros((5, 9 * 128), np.float32)}, "must be 3-D"),
        ({"y_train": np.zeros(4, np.int64)}, "one label per window"),
        ({"X_test": np.zeros((3, 8, 128), np.float32)}, "9 channels"),
        ({"X_test": np.zeros((3, 9, 64), np.float32)}, "differ"),
    ],
)
def test_malformed_npz(tmp_path, bad, match):
    arrays = {**_fake_arrays(), **bad}
    _write_npz(tmp_path / "subject_04.npz", arrays)
    with pytest.raises(ValueError, match=match):
        load_uci_har(4, data_home=tmp_path)


def test_npz_missing_key(tmp_path):
    arrays = _fake_arrays()
    del arrays["y_test"]
    _write_npz(tmp_path / "subject_04.npz", arrays)
    with pytest.raises(ValueError, match="missing arrays"):
        load_uci_har(4, data_home=tmp_path)


# --------------------------------------------------------------- AdaTime .pt
def _save_pt(path, samples, labels):
    torch = pytest.importorskip("torch")
    torch.save({"samples": samples, "labels": labels}, path)


def test_adatime_round_trip_channels_last(tmp_path):
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(0).standard_normal((6, 9, 128)).astype(np.float32)
    y = np.arange(6) % 6
    # Written channels last, (n, L, C), as some AdaTime files are.
    _save_pt(
        tmp_path / "train_3.pt",
        torch.from_numpy(X.transpose(0, 2, 1).copy()),
        torch.from_numpy(y).float(),
    )
    X_read, y_read = load_adatime_pt(tmp_path / "train_3.pt", n_channels=9)
    assert X_read.dtype == np.float32 and y_read.dtype == np.int64
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    # Without the channel count, the smaller axis is taken as channels.
    X_auto, _ = load_adatime_pt(tmp_path / "train_3.pt")
    np.testing.assert_array_equal(X_auto, X)


def test_adatime_channels_first_untouched_and_numpy_payload(tmp_path):
    X = np.random.default_rng(1).standard_normal((4, 9, 128)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    # numpy arrays inside the dict must load with the safe loader too.
    _save_pt(tmp_path / "a.pt", X, y)
    X_read, y_read = load_adatime_pt(tmp_path / "a.pt", n_channels=9)
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)


def test_adatime_subject_in_data_home(tmp_path):
    torch = pytest.importorskip("torch")
    arrays = _fake_arrays(n_train=5, n_test=3)
    folder = tmp_path / "HAR"
    folder.mkdir()
    for split in ("train", "test"):
        X = torch.from_numpy(arrays[f"X_{split}"].transpose(0, 2, 1).copy())
        y = torch.from_numpy(arrays[f"y_{split}"])
        _save_pt(folder / f"{split}_12.pt", X, y)
    data = load_uci_har(12, data_home=tmp_path)
    np.testing.assert_array_equal(data.X_train, arrays["X_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert "train_12.pt" in data.filename


class _Opaque:
    """A plain Python object that the weights-only loader refuses."""

    def __init__(self):
        self.value = 1


def test_adatime_unsafe_pickle(tmp_path):
    path = tmp_path / "train_1.pt"
    _save_pt(path, np.zeros((2, 9, 16), np.float32), _Opaque())
    with pytest.raises(ValueError, match="allow_pickle=True") as excinfo:
        load_adatime_pt(path)
    assert "trust" in str(excinfo.value)
    # The user explicitly trusts the file: it loads, then fails on content.
    with pytest.raises(ValueError, match="labels"):
        load_adatime_pt(path, allow_pickle=True)


def test_adatime_unsafe_pickle_via_load_uci_har(tmp_path):
    for split in ("train", "test"):
        _save_pt(tmp_path / f"{split}_9.pt", np.zeros((2, 9, 16)), _Opaque())
    with pytest.raises(ValueError, match="allow_pickle"):
        load_uci_har(9, data_home=tmp_path)


def test_adatime_trusted_pickle_loads(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    labels = [0, 1]
    # An extra entry holding a custom object makes the whole file unsafe.
    payload = {"samples": np.zeros((2, 9, 16)), "labels": labels, "x": _Opaque()}
    torch.save(payload, path)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_adatime_pt(path)
    X, y = load_adatime_pt(path, allow_pickle=True)
    assert X.shape == (2, 9, 16) and y.tolist() == labels


@pytest.mark.parametrize(
    "samples, labels, n_channels, match",
    [
        (np.zeros((2, 3, 4, 5)), np.zeros(2), None, "3-D"),
        (np.zeros((2, 5, 16)), np.zeros(2), 9, "expected 9 channels"),
        (np.zeros((2, 9, 16)), np.zeros(3), 9, "one label per sample"),
        (np.zeros((2, 9, 16)), np.array([0.5, 1.0]), 9, "not integer"),
    ],
)
def test_adatime_malformed(tmp_path, samples, labels, n_channels, match):
    path = tmp_path / "bad.pt"
    _save_pt(path, samples, labels)
    with pytest.raises(ValueError, match=match):
        load_adatime_pt(path, n_channels=n_channels)


def test_adatime_missing_keys(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"x": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="'samples' and 'labels'"):
        load_adatime_pt(tmp_path / "bad.pt")


# --------------------------------------------------------------- scenarios
def test_scenario_constants():
    assert HAR_MAIN_SCENARIOS == ("2->11", "7->13", "12->16", "9->18", "6->23")
    assert HAR_ADDITIONAL_SCENARIOS == (
        "18->27",
        "20->5",
        "24->8",
        "28->27",
        "30->20",
    )
    for scenario in HAR_MAIN_SCENARIOS + HAR_ADDITIONAL_SCENARIOS:
        source, target = _parse_scenario(scenario)
        assert f"{source}->{target}" == scenario


@pytest.mark.parametrize(
    "scenario, expected",
    [
        ("2->11", (2, 11)),
        (" 2 -> 11 ", (2, 11)),
        ((2, 11), (2, 11)),
        ([30, 1], (30, 1)),
    ],
)
def test_parse_scenario(scenario, expected):
    assert _parse_scenario(scenario) == expected


@pytest.mark.parametrize(
    "scenario, match",
    [
        ("2-11", "must look like"),
        ("2->", "must look like"),
        ("a->b", "must look like"),
        ("2->11->3", "must look like"),
        ((2, 11, 3), "pair"),
        (211, "pair"),
        ("2->2", "different subjects"),
        ((5, 5), "different subjects"),
        ("0->11", "between 1 and 30"),
        ("2->31", "between 1 and 30"),
        (("2", "11"), "between 1 and 30"),
    ],
)
def test_parse_scenario_errors(scenario, match):
    with pytest.raises(ValueError, match=match):
        load_har_scenario(scenario)


@pytest.mark.parametrize("scenario", ["2->11", (2, 11)])
def test_load_har_scenario_offline(tmp_path, scenario):
    data = load_har_scenario(scenario, data_home=tmp_path)
    assert data.scenario == "2->11"
    assert (data.source, data.target) == (2, 11)
    assert data.X_src.shape == (211, 9, 128) and data.y_src.shape == (211,)
    assert data.X_tgt.shape == (221, 9, 128) and data.y_tgt.shape == (221,)
    assert data.X_tgt_test.shape == (95, 9, 128) and data.y_tgt_test.shape == (95,)
    assert data.target_names == list(HAR_TARGET_NAMES)
    src, tgt = load_uci_har(2, tmp_path), load_uci_har(11, tmp_path)
    np.testing.assert_array_equal(data.X_src, src.X_train)
    np.testing.assert_array_equal(data.X_tgt, tgt.X_train)
    np.testing.assert_array_equal(data.y_tgt_test, tgt.y_test)


def test_load_har_scenario_missing_subject(tmp_path):
    with pytest.raises(FileNotFoundError, match="subject 7 was not found"):
        load_har_scenario("7->13", data_home=tmp_path)


@needs_shared
def test_load_har_scenario_shared_copy(tmp_path):
    # A data home holding a copy of the shared files behaves like the shared one.
    shutil.copy(SHARED_HAR / "subject_06.npz", tmp_path)
    shutil.copy(SHARED_HAR / "subject_23.npz", tmp_path)
    data = load_har_scenario("6->23", data_home=tmp_path)
    assert data.X_src.shape == (227, 9, 128)
    assert data.X_tgt.shape == (260, 9, 128)
    assert data.X_tgt_test.shape == (112, 9, 128)


# --------------------------------------------------------------- synthetic
def test_make_domain_shift_shapes_and_types():
    data = make_domain_shift(
        n_samples=40,
        n_target=30,
        n_test=20,
        n_channels=4,
        n_timepoints=32,
        n_classes=5,
        random_state=0,
    )
    assert data.X_src.shape == (40, 4, 32)
    assert data.X_tgt.shape == (30, 4, 32)
    assert data.X_tgt_test.shape == (20, 4, 32)
    for key in ("X_src", "X_tgt", "X_tgt_test"):
        assert data[key].dtype == np.float32
    for key in ("y_src", "y_tgt", "y_tgt_test"):
        assert data[key].dtype == np.int64
    assert set(data.y_src.tolist()) == set(range(5))
    assert np.bincount(data.y_src).max() - np.bincount(data.y_src).min() <= 1
    assert data.target_names == [f"class_{c}" for c in range(5)]
    # Defaults: target and test sizes follow n_samples.
    default = make_domain_shift(n_samples=12, random_state=0)
    assert len(default.X_tgt) == len(default.X_tgt_test) == 12


def test_make_domain_shift_deterministic():
    a = make_domain_shift(random_state=42)
    b = make_domain_shift(random_state=42)
    c = make_domain_shift(random_state=43)
    for key in ("X_src", "y_src", "X_tgt", "y_tgt", "X_tgt_test", "y_tgt_test"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.X_src, c.X_src)
    assert not np.array_equal(a.X_tgt, c.X_tgt)
    rng = np.random.RandomState(0)
    assert make_domain_shift(n_samples=5, random_state=rng).X_src.shape == (5, 3, 64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_make_domain_shift_degrades_source_only_model(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    data = make_domain_shift(n_samples=200, n_test=150, shift=2.5, random_state=seed)
    X = data.X_src.reshape(len(data.X_src), -1)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, data.y_src, test_size=0.3, random_state=0, stratify=data.y_src
    )
    clf = LogisticRegression(max_iter=2000).fit(X_tr, y_tr)
    source_acc = clf.score(X_te, y_te)
    target_acc = clf.score(
        data.X_tgt_test.reshape(len(data.X_tgt_test), -1), data.y_tgt_test
    )
    assert source_acc >= 0.9
    assert target_acc <= source_acc - 0.2


def test_make_domain_shift_zero_shift_no_degradation():
    from sklearn.linear_model import LogisticRegression

    data = make_domain_shift(n_samples=200, shift=0.0, random_state=0)
    clf = LogisticRegression(max_iter=2000).fit(
        data.X_src.reshape(len(data.X_src), -1), data.y_src
    )
    X_test = data.X_tgt_test.reshape(len(data.X_tgt_test), -1)
    assert clf.score(X_test, data.y_tgt_test) >= 0.9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_samples": 0},
        {"n_classes": 1},
        {"n_channels": 2.5},
        {"shift": -1.0},
        {"noise": float("nan")},
        {"n_target": 0},
    ],
)
def test_make_domain_shift_invalid(kwargs):
    with pytest.raises(ValueError):
        make_domain_shift(**kwargs)
