"""Data sets for cross-domain time-series classification.

UCI-HAR per subject (with subjects 2 and 11 embedded, so the ``"2->11"``
scenario works offline), a reader for AdaTime ``.pt`` files, and a seeded
synthetic domain-shift generator for tests.
"""

from ._adatime import load_adatime_pt
from ._base import DATA_HOME_ENV, DEFAULT_DATA_HOME, get_data_home
from ._sktime import SKTIME_BUNDLED_CLASSIFICATION, load_sktime_dataset
from ._synthetic import make_domain_shift
from ._uci_har import (
    EMBEDDED_SUBJECTS,
    HAR_ADDITIONAL_SCENARIOS,
    HAR_CHANNEL_NAMES,
    HAR_MAIN_SCENARIOS,
    HAR_TARGET_NAMES,
    load_har_scenario,
    load_uci_har,
)

__all__ = [
    "DATA_HOME_ENV",
    "DEFAULT_DATA_HOME",
    "EMBEDDED_SUBJECTS",
    "HAR_ADDITIONAL_SCENARIOS",
    "HAR_CHANNEL_NAMES",
    "HAR_MAIN_SCENARIOS",
    "HAR_TARGET_NAMES",
    "SKTIME_BUNDLED_CLASSIFICATION",
    "get_data_home",
    "load_adatime_pt",
    "load_har_scenario",
    "load_sktime_dataset",
    "load_uci_har",
    "make_domain_shift",
]
