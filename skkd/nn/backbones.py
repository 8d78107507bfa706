"""Length-agnostic backbones for time-series classification.

Every backbone shares one interface so that distillers can treat teachers and
students uniformly:

* ``__init__(n_channels, n_classes, **hyperparameters)``;
* input ``x`` of shape ``(batch, n_channels, n_timepoints)`` (float32);
* ``forward(x)`` returns logits ``(batch, n_classes)``;
* ``forward_features(x)`` returns the embedding ``(batch, n_features)``;
* ``head`` is an ``nn.Linear(n_features, n_classes)`` that may be replaced and
  ``forward(x) == head(forward_features(x))``.

No backbone needs the series length; all accept any ``n_timepoints >= 1``.
"""

import torch
from torch import nn

__all__ = ["CNN1D", "GRUClassifier", "LSTMClassifier", "ResNet1D"]


class _Backbone(nn.Module):
    """Shared ``forward``: logits are always the head applied to the features."""

    def forward_features(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        """Return class logits of shape ``(batch, n_classes)``."""
        return self.head(self.forward_features(x))


class CNN1D(_Backbone):
    """Three-block 1-D CNN of AdaTime, the backbone used by UNI-KD.

    Block 1 is ``Conv1d(kernel_size, stride, padding=kernel_size // 2)``,
    ``BatchNorm1d``, ``ReLU``, ``MaxPool1d(2, 2, padding=1)`` and ``Dropout``;
    every further block is ``Conv1d(8, padding=4)``, ``BatchNorm1d``, ``ReLU``,
    ``MaxPool1d(2, 2, padding=1)``. Global average pooling gives an embedding of
    size ``widths[-1]``. The architecture follows Ragab et al. (2023),
    "ADATIME: A benchmarking suite for domain adaptation on time series data",
    ACM TKDD, and is the teacher/student family of Xu et al. (2023), "Distilling
    universal and joint knowledge for cross-domain model compression on time
    series data" (UNI-KD), IJCAI.

    Parameters
    ----------
    n_channels : int
        Number of input channels.
    n_classes : int
        Number of classes (size of the logits).
    widths : tuple of int, default=(64, 128, 128)
        Output channels of each convolutional block (at least one block).
    kernel_size : int, default=5
        Kernel size of the first convolution.
    stride : int, default=1
        Stride of the first convolution.
    dropout : float, default=0.5
        Dropout probability after the first block.
    dropout_blocks : {"first", "all"}, default="first"
        Where Dropout goes: after the first block (AdaTime, UNI-KD) or after
        every block (the RCD-KD teacher, for Monte Carlo dropout). Parameters
        are the same either way.

    Attributes
    ----------
    features : torch.nn.Sequential
        The convolutional blocks, each itself an ``nn.Sequential``.
    pool : torch.nn.AdaptiveAvgPool1d
        Global average pooling over time.
    head : torch.nn.Linear
        Classifier ``Linear(n_features, n_classes)``.
    n_features : int
        Embedding size, ``widths[-1]``.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import CNN1D
    >>> net = CNN1D(9, 6, widths=(16, 32, 32))
    >>> sum(p.numel() for p in net.parameters())
    13366
    >>> net.eval()(torch.randn(2, 9, 128)).shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        n_channels,
        n_classes,
        widths=(64, 128, 128),
        kernel_size=5,
        stride=1,
        dropout=0.5,
        dropout_blocks="first",
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 1:
            raise ValueError("widths must contain at least one block width.")
        if dropout_blocks not in ("first", "all"):
            raise ValueError(
                f"dropout_blocks must be 'first' or 'all', got {dropout_blocks!r}."
            )
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.widths = widths
        self.kernel_size = kernel_size
        self.stride = stride
        self.dropout = dropout
        self.dropout_blocks = dropout_blocks

        # Convolutions are followed by BatchNorm, so their bias is redundant.
        blocks = [
            nn.Sequential(
                nn.Conv1d(
                    n_channels,
                    widths[0],
                    kernel_size,
                    stride=stride,
                    padding=kernel_size // 2,
                    bias=False,
                ),
                nn.BatchNorm1d(widths[0]),
                nn.ReLU(),
                nn.MaxPool1d(kernel_size=2, stride=2, padding=1),
                nn.Dropout(dropout),
            )
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(c_in, c_out, 8, stride=1, padding=4, bias=False),
                    nn.BatchNorm1d(c_out),
                    nn.ReLU(),
                    nn.MaxPool1d(kernel_size=2, stride=2, padding=1),
                    *([nn.Dropout(dropout)] if dropout_blocks == "all" else []),
                )
            )
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.n_features = widths[-1]
        self.head = nn.Linear(self.n_features, n_classes)

    def forward_features(self, x):
        """Return the pooled embedding of shape ``(batch, n_features)``.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Input series.

        Returns
        -------
        torch.Tensor of shape (batch, n_features)
            Embedding before the classifier head.
        """
        return torch.flatten(self.pool(self.features(x)), 1)


_INITS = ("recurrent", "pytorch")


def recurrent_training_recipe(hidden_size=100, num_layers=1, **_):
    """Training settings for a recurrent classifier of a given size.

    lr 1e-2 for single-layer networks up to 32 units (the students of the
    ``skkd bench memkd_recipe`` study), 1e-3 for stacked or wider ones (a
    3x100 LSTM stays at chance on GunPoint with 1e-2 and learns with 1e-3);
    up to 200 epochs; gradient norm clipped at 1.

    Parameters
    ----------
    hidden_size, num_layers : int
        The module's hyperparameters (others are ignored).

    Returns
    -------
    dict
        ``lr``, ``max_epochs`` and ``max_grad_norm``.

    Examples
    --------
    >>> recurrent_training_recipe(8)["lr"], recurrent_training_recipe(100, 3)["lr"]
    (0.01, 0.001)
    """
    small = num_layers == 1 and hidden_size <= 32
    return {"lr": 1e-2 if small else 1e-3, "max_epochs": 200, "max_grad_norm": 1.0}


class _RecurrentClassifier(_Backbone):
    """One code path for LSTM and GRU classifiers; subclasses pick the cell."""

    _rnn_cls = None
    #: row block (in gate units) of the gate whose bias ``forget_bias`` sets
    _memory_gate = None

    #: training settings an estimator uses for this module where the user left
    #: its own defaults (see :func:`skkd.recipes.resolve_recipe`); chosen by the
    #: ``skkd bench memkd_recipe`` study (docs/memkd.rst)
    training_recipe = staticmethod(recurrent_training_recipe)

    def __init__(
        self,
        n_channels,
        n_classes,
        hidden_size=100,
        num_layers=1,
        dropout=0.0,
        init="recurrent",
        forget_bias=1.0,
    ):
        super().__init__()
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.init = init
        self.forget_bias = forget_bias
        # PyTorch applies dropout only between stacked layers and warns when it
        # is set with a single layer, so pass it only where it has an effect.
        self.rnn = self._rnn_cls(
            input_size=n_channels,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.n_features = hidden_size
        self.head = nn.Linear(hidden_size, n_classes)
        if init == "recurrent":
            self._init_recurrent()

    def _init_recurrent(self):
        # Orthogonal recurrent weights keep the state's norm through time at
        # the start of training; a positive forget (LSTM) / update (GRU) gate
        # bias makes the initial cell remember instead of decaying by half
        # per step, so gradients reach the early time steps of long series.
        h = self.hidden_size
        gate = slice(self._memory_gate * h, (self._memory_gate + 1) * h)
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                for block in param.data.split(h):
                    nn.init.orthogonal_(block)
            elif name.startswith("weight_ih"):
                for block in param.data.split(h):
                    nn.init.xavier_uniform_(block)
            elif name.startswith("bias_ih"):
                param.data.zero_()
                param.data[gate] = self.forget_bias
            elif name.startswith("bias_hh"):
                param.data.zero_()

    def forward_sequence(self, x):
        """Return the top layer's hidden states over time.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Input series.

        Returns
        -------
        torch.Tensor of shape (batch, n_timepoints, hidden_size)
            Hidden state of the top layer at every time step.
        """
        # The recurrent layer is batch_first and expects (batch, time, channels).
        out, _ = self.rnn(x.transpose(1, 2))
        return out

    def forward_features(self, x):
        """Return the top layer's last hidden state ``(batch, hidden_size)``.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Input series.

        Returns
        -------
        torch.Tensor of shape (batch, hidden_size)
            Hidden state at the last time step.
        """
        return self.forward_sequence(x)[:, -1, :]


class LSTMClassifier(_RecurrentClassifier):
    """LSTM classifier reading the last hidden state of the top layer.

    Long short-term memory of Hochreiter & Schmidhuber (1997), "Long
    short-term memory", Neural Computation 9(8).

    Parameters
    ----------
    n_channels : int
        Number of input channels (LSTM input size).
    n_classes : int
        Number of classes.
    hidden_size : int, default=100
        Hidden units per layer; also the embedding size.
    num_layers : int, default=1
        Number of stacked recurrent layers.
    dropout : float, default=0.0
        Dropout between stacked layers (no effect when ``num_layers == 1``).
    init : {"recurrent", "pytorch"}, default="recurrent"
        "recurrent": orthogonal recurrent weights (per gate), Glorot-uniform
        input weights, zero biases except ``forget_bias`` on the forget
        gate; "pytorch": PyTorch's uniform initialisation.
    forget_bias : float, default=1.0
        Initial bias of the forget gate with ``init="recurrent"``.

    Attributes
    ----------
    rnn : torch.nn.LSTM
        The batch-first recurrent network.
    head : torch.nn.Linear
        Classifier ``Linear(hidden_size, n_classes)``.
    n_features : int
        Embedding size, ``hidden_size``.
    training_recipe : callable
        Class attribute, :func:`recurrent_training_recipe`: the ``lr``,
        ``max_epochs`` and ``max_grad_norm`` an estimator uses where they were
        left at its defaults (:mod:`skkd.recipes`).

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import LSTMClassifier
    >>> net = LSTMClassifier(3, 4, hidden_size=8)
    >>> x = torch.randn(2, 3, 10)
    >>> net(x).shape, net.forward_sequence(x).shape
    (torch.Size([2, 4]), torch.Size([2, 10, 8]))
    """

    _rnn_cls = nn.LSTM
    _memory_gate = 1  # PyTorch's gate order: input, forget, cell, output


class GRUClassifier(_RecurrentClassifier):
    """GRU classifier reading the last hidden state of the top layer.

    Gated recurrent unit of Cho et al. (2014), "Learning phrase representations
    using RNN encoder-decoder for statistical machine translation", EMNLP.

    Parameters
    ----------
    n_channels : int
        Number of input channels (GRU input size).
    n_classes : int
        Number of classes.
    hidden_size : int, default=100
        Hidden units per layer; also the embedding size.
    num_layers : int, default=1
        Number of stacked recurrent layers.
    dropout : float, default=0.0
        Dropout between stacked layers (no effect when ``num_layers == 1``).
    init : {"recurrent", "pytorch"}, default="recurrent"
        "recurrent": orthogonal recurrent weights (per gate), Glorot-uniform
        input weights, zero biases except ``forget_bias`` on the update
        gate (``z``; 1 keeps the state); "pytorch": PyTorch's uniform
        initialisation.
    forget_bias : float, default=1.0
        Initial bias of the update gate with ``init="recurrent"``.

    Attributes
    ----------
    rnn : torch.nn.GRU
        The batch-first recurrent network.
    head : torch.nn.Linear
        Classifier ``Linear(hidden_size, n_classes)``.
    n_features : int
        Embedding size, ``hidden_size``.
    training_recipe : callable
        Class attribute, :func:`recurrent_training_recipe`: the ``lr``,
        ``max_epochs`` and ``max_grad_norm`` an estimator uses where they were
        left at its defaults (:mod:`skkd.recipes`).

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import GRUClassifier
    >>> net = GRUClassifier(3, 4, hidden_size=8, num_layers=2)
    >>> net.forward_features(torch.randn(2, 3, 10)).shape
    torch.Size([2, 8])
    """

    _rnn_cls = nn.GRU
    _memory_gate = 1  # reset, update, new; the update gate keeps the state


class _ResidualBlock(nn.Module):
    """Three same-padded conv+BN layers plus a shortcut, ReLU after the sum."""

    def __init__(self, in_channels, out_channels, kernel_sizes):
        super().__init__()
        layers = []
        c_in = in_channels
        for i, k in enumerate(kernel_sizes):
            # BatchNorm follows every convolution, so the conv bias is redundant.
            layers += [
                nn.Conv1d(c_in, out_channels, k, padding="same", bias=False),
                nn.BatchNorm1d(out_channels),
            ]
            if i < len(kernel_sizes) - 1:
                layers.append(nn.ReLU())
            c_in = out_channels
        self.body = nn.Sequential(*layers)
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm1d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet1D(_Backbone):
    """Fully convolutional residual network for time-series classification.

    The strong baseline of Wang, Yan & Oates (2017), "Time series
    classification from scratch with deep neural networks: a strong baseline",
    IJCNN. Each residual block stacks three ``Conv1d(padding='same')`` +
    ``BatchNorm1d`` layers (ReLU between them) with kernel sizes
    ``kernel_sizes``; the shortcut is a 1x1 convolution + BatchNorm when the
    width changes and the identity otherwise; ReLU follows the sum. Global
    average pooling over time gives the embedding.

    Parameters
    ----------
    n_channels : int
        Number of input channels.
    n_classes : int
        Number of classes.
    n_filters : tuple of int, default=(64, 128, 128)
        Width of each residual block (one block per entry).
    kernel_sizes : tuple of int, default=(8, 5, 3)
        Kernel sizes of the convolutions inside every block.

    Attributes
    ----------
    features : torch.nn.Sequential
        The residual blocks.
    pool : torch.nn.AdaptiveAvgPool1d
        Global average pooling over time.
    head : torch.nn.Linear
        Classifier ``Linear(n_features, n_classes)``.
    n_features : int
        Embedding size, ``n_filters[-1]``.

    Examples
    --------
    >>> import torch
    >>> from skkd.nn import ResNet1D
    >>> net = ResNet1D(2, 3, n_filters=(8, 16))
    >>> net.eval()(torch.randn(4, 2, 50)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self, n_channels, n_classes, n_filters=(64, 128, 128), kernel_sizes=(8, 5, 3)
    ):
        super().__init__()
        n_filters = tuple(int(f) for f in n_filters)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if len(n_filters) < 1 or len(kernel_sizes) < 1:
            raise ValueError("n_filters and kernel_sizes must be non-empty.")
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.n_filters = n_filters
        self.kernel_sizes = kernel_sizes
        blocks = []
        c_in = n_channels
        for c_out in n_filters:
            blocks.append(_ResidualBlock(c_in, c_out, kernel_sizes))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.n_features = n_filters[-1]
        self.head = nn.Linear(self.n_features, n_classes)

    def forward_features(self, x):
        """Return the pooled embedding of shape ``(batch, n_features)``.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, n_channels, n_timepoints)
            Input series.

        Returns
        -------
        torch.Tensor of shape (batch, n_features)
            Embedding before the classifier head.
        """
        return torch.flatten(self.pool(self.features(x)), 1)
