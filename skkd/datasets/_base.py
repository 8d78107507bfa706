"""Resolution of the local data folder used by the dataset loaders."""

import os
from pathlib import Path

__all__ = ["DATA_HOME_ENV", "DEFAULT_DATA_HOME", "get_data_home"]

#: Environment variable that overrides the default data folder.
DATA_HOME_ENV = "SKKD_DATA"

#: Data folder used when neither an argument nor ``SKKD_DATA`` is given.
DEFAULT_DATA_HOME = "~/skkd_data"


def get_data_home(data_home=None):
    """Return the folder where skkd looks for downloaded data sets.

    The folder is chosen in this order:

    1. the ``data_home`` argument, if it is not ``None``;
    2. the ``SKKD_DATA`` environment variable, if it is set and not empty;
    3. the default ``~/skkd_data``.

    A leading ``~`` is expanded. The folder is neither created nor required
    to exist: the loaders only read from it, and fall back to the copies
    embedded in the package when a file is missing.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        Explicit data folder. ``None`` means "use ``SKKD_DATA`` or the
        default".

    Returns
    -------
    data_home : pathlib.Path
        The resolved data folder.

    Examples
    --------
    >>> from pathlib import Path
    >>> from skkd.datasets import get_data_home
    >>> get_data_home("../shared/data/uci_har").as_posix()
    '../shared/data/uci_har'
    >>> get_data_home("~/my_data") == Path.home() / "my_data"
    True
    >>> isinstance(get_data_home(), Path)  # SKKD_DATA or ~/skkd_data
    True
    """
    if data_home is None:
        # An empty variable is treated as unset rather than as the cwd.
        data_home = os.environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME
    return Path(os.fspath(data_home)).expanduser()
