"""Auxiliary heads of the layer-wise baselines, and the InfoPro loss helpers.

Every head maps a module's output T_k of shape (N, C, H, W) to class logits (N, num_classes); the harness
measures each module's auxiliary accuracy with ``head(t).argmax(1)``. Build them by name with
:func:`build_head`; :data:`HEADS` lists the names.

What the authors' published code does (read from the repositories named below; these are the structures
reproduced here, and the method files cite this block):

* greedy_ce -- Belilovsky, Eickenberg, Oyallon, "Greedy Layerwise Learning Can Scale to ImageNet", ICML 2019.
  github.com/eugenium/layerCNN, ``model_greedy.py`` (class ``auxillary_classifier``) and ``cifar.py`` (how it
  is built); best CIFAR-10 command in ``README.md``:
  ``cifar.py --ncnn 4 --nlin 2 --feature_size 128 --down [1] --bn 1`` (k = 3 in the paper, 91.7%).
  Head: ``nlin`` = 2 x [conv 3x3, stride 1, pad 1, no bias, width ``width_aux`` -> BN -> ReLU]; then average
  pooling with kernel ``avg_size`` = in_size / 2 (16 at 32x32, halved with the resolution), i.e. down to 2x2;
  then BN on the pooled map; flatten; one Linear(width * 2 * 2 -> classes). ``width_aux`` starts at 128 =
  ``feature_size`` and doubles whenever the feature size doubles, so the head width equals the module's
  channel count C. Loss: CE. (``--bn`` defaults to 0 in ``cifar.py`` but the published commands pass
  ``--bn 1``; with 0 every BN is identity.)

* dgl -- Belilovsky, Eickenberg, Oyallon, "Decoupled Greedy Learning of CNNs", ICML 2020.
  github.com/eugenium/DGL, ``auxiliary_nets_study/models.py`` (class ``auxillary_classifier2``,
  ``aux_type='mlp-sr'`` -> ``n_lin=3, mlp_layers=3``; ``auxiliary_nets_study/cifar_dgl.py`` defaults to
  ``--type_aux mlp-sr``); the same class is in ``ddg_comparison/models.py`` and
  ``imagenet_dgl/models/auxillary_classifier.py``. MLP-SR head: adaptive average pooling to ceil(in_size/4) x
  ceil(in_size/4) ("spatial reduction", 32 -> 8); then 3 x [conv 1x1, no bias, C -> C -> BN -> ReLU]; adaptive
  average pooling to 2x2; flatten (4C); then an MLP of 3 x [Linear(4C -> 4C) -> BN1d -> ReLU] and a final
  Linear(4C -> classes). Loss: CE. (The DGL CIFAR net's last module uses the same class with no conv and a
  2-layer MLP as the network's own classifier.)

* infopro -- Wang, Ni, Song, Yang, Huang, "Revisiting Locally Supervised Learning: an Alternative to
  End-to-end Training", ICLR 2021. github.com/blackfeather-wang/InfoPro-Pytorch, folder ``Experiments on
  CIFAR-SVHN-STL10``: ``networks/auxiliary_nets.py`` (``Decoder``, ``AuxClassifier``), ``networks/losses.py``
  (``SupConLoss``), ``networks/resnet.py`` (``InfoProResNet.forward``: loss weights, image un-normalisation),
  ``networks/configs.py`` (module boundaries), ``train.py`` (defaults) and ``comand.sh`` / ``README.md`` (the
  published commands). Decoder: bilinear interpolation (align_corners=True) of the features to the image size;
  conv 3x3 (C -> 12, bias) -> BN -> ReLU -> conv 3x3 (12 -> 3, bias) -> Sigmoid; loss ``nn.BCELoss`` against
  the *un-normalised* input image ``x * std + mean`` in [0, 1] (``_image_restore``; BCELoss clamps each log
  at -100). The network's init loop also re-initialises both auxiliary nets (convs Kaiming normal fan-out, BN
  weight 1 bias 0; Linear layers keep PyTorch's defaults). ``1c2f`` head: conv 3x3
  (no bias) -> BN -> ReLU -> global average pool -> Linear(-> 128) -> ReLU -> Linear(-> out), where the conv
  is 16 -> 32 stride 2, 32 -> 64 stride 2, 64 -> 64 stride 1 (i.e. C < 64: 2C channels, stride 2; otherwise C
  channels, stride 1); ``out`` = num_classes for ``local_loss_mode='cross_entropy'``, 128 for ``'contrast'``
  (then L2-normalised and fed to the supervised contrastive loss of Khosla et al., temperature 0.07, base
  temperature 0.07). Local loss of module k (0-based, k <= K-2): ``lambda1 * BCE + lambda2 * I(h,y)-term``
  with ``ratio = k / (K-2)`` (0 if K == 2), ``lambda1 = ixx_1 (1-ratio) + ixx_2 ratio``,
  ``lambda2 = ixy_1 (1-ratio) + ixy_2 ratio``; the last module is trained with the network's own classifier
  and plain CE. ``train.py`` defaults: ``local_loss_mode='contrast'``, ``aux_net_config='1c2f'``, widen 1;
  every published CIFAR/SVHN/STL-10 command uses contrast, 1c2f, feature dim 128 (table in
  :data:`INFOPRO_DEFAULTS`). The paper's abstract: the method "boils down to minimizing the combination of a
  reconstruction loss and a normal cross-entropy/contrastive term".
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError

__all__ = [
    "AUX_INITS",
    "HEADS",
    "INFOPRO_DEFAULTS",
    "RECONSTRUCTION_LOSSES",
    "ConvAuxHead",
    "InfoProHead",
    "LinearHead",
    "MLPSRHead",
    "build_head",
    "conv_head",
    "infopro_head",
    "infopro_lambdas",
    "infopro_local_loss",
    "infopro_published_weights",
    "infopro_reconstruction_loss",
    "init_like_authors",
    "linear_head",
    "mlp_sr_head",
    "supervised_contrastive_loss",
]

Shape = tuple[int, int, int]


def _check_shape(in_shape: Sequence[int], what: str = "in_shape") -> Shape:
    """``in_shape`` as a (C, H, W) tuple of positive ints, or a ConfigError saying what is wrong."""
    shape = tuple(int(s) for s in in_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"{what} must be (C, H, W) with positive sizes, got {tuple(in_shape)}")
    return shape  # type: ignore[return-value]


def _norm2d(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


# --- greedy layer-wise (Belilovsky et al., 2019) ------------------------------------------------------------


class ConvAuxHead(nn.Module):
    """The convolutional auxiliary classifier of greedy layer-wise learning (Belilovsky et al., ICML 2019).

    Source: github.com/eugenium/layerCNN, ``model_greedy.py`` class ``auxillary_classifier``, built in
    ``cifar.py`` with the README's best CIFAR-10 setting (``--nlin 2 --bn 1``, ``width_aux`` = the module's
    channel count)::

        n_conv x [conv3x3(no bias) -> BN -> ReLU] -> avg-pool to 2x2 -> BN -> flatten
        -> Linear(width*4 -> classes)

    Departure: the authors pool with a fixed kernel ``avg_size = in_size / 2``; here adaptive average pooling
    to ``pool_size`` x ``pool_size`` does the same for even sizes and also accepts odd, non-square or 1x1 maps
    (a 1x1 map is replicated to 2x2, which only ties the linear weights of the four cells).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        *,
        n_conv: int = 2,
        width: int | None = None,
        pool_size: int = 2,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        c, _, _ = _check_shape(in_shape)
        if n_conv < 0 or pool_size < 1:
            raise ConfigError(f"conv head: n_conv must be >= 0 and pool_size >= 1, got {n_conv}, {pool_size}")
        width = c if (width is None or n_conv == 0) else int(width)
        layers: list[nn.Module] = []
        for i in range(n_conv):
            layers += [
                nn.Conv2d(c if i == 0 else width, width, 3, stride=1, padding=1, bias=False),
                _norm2d(width, batchnorm),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.bn = _norm2d(width, batchnorm)
        self.classifier = nn.Linear(width * pool_size * pool_size, num_classes)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.pool(self.convs(t)))
        return self.classifier(out.flatten(1))


def conv_head(
    in_shape: Sequence[int],
    num_classes: int,
    *,
    image_shape: Sequence[int] = (3, 32, 32),
    n_conv: int = 2,
    width: int | None = None,
    pool_size: int = 2,
    batchnorm: bool = True,
) -> ConvAuxHead:
    """Greedy layer-wise conv head (Belilovsky 2019, layerCNN ``model_greedy.py``); see :class:`ConvAuxHead`.

    Options: ``n_conv`` (the code's ``nlin``, default 2 = the paper's k = 3), ``width`` (default: C, as
    ``width_aux`` tracks ``feature_size`` in ``cifar.py``), ``pool_size`` (2), ``batchnorm``
    (True = ``--bn 1``). ``image_shape`` is accepted for a uniform signature and unused.
    """
    return ConvAuxHead(
        in_shape, num_classes, n_conv=n_conv, width=width, pool_size=pool_size, batchnorm=batchnorm
    )


# --- DGL (Belilovsky et al., 2020) --------------------------------------------------------------------------


class MLPSRHead(nn.Module):
    """DGL's MLP-SR auxiliary network ("MLP with spatial reduction"; Belilovsky et al., ICML 2020).

    Source: github.com/eugenium/DGL, ``auxiliary_nets_study/models.py`` class ``auxillary_classifier2`` with
    ``aux_type='mlp-sr'`` (``n_lin=3``, ``mlp_layers=3``; the default of
    ``auxiliary_nets_study/cifar_dgl.py``)::

        avg-pool to ceil(H/4) x ceil(W/4) -> n_conv x [conv1x1(C->C, no bias) -> BN -> ReLU] -> avg-pool to
        2x2 -> flatten (4C) -> mlp_layers x [Linear(4C->4C) -> BN1d -> ReLU] -> Linear(4C -> classes)

    With ``mlp_layers=0`` the authors' non-MLP branch is used: BN on the 2x2 map, then Linear(4C -> classes).

    Departures: the authors reduce a square ``in_size`` given at construction; here the reduction is computed
    per axis from the actual (H, W), so non-square maps work. Both poolings are adaptive, so 1x1 and 2x2 maps
    work (a map smaller than the target is replicated). ``mlp_width`` (default 4C, the authors') can be
    lowered for very wide backbones: at C = 2048 the authors' MLP has ~200M parameters.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        *,
        n_conv: int = 3,
        mlp_layers: int = 3,
        mlp_width: int | None = None,
        reduction: int = 4,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        c, h, w = _check_shape(in_shape)
        if n_conv < 0 or mlp_layers < 0 or reduction < 1:
            raise ConfigError(
                "mlp_sr head: n_conv, mlp_layers must be >= 0 and reduction >= 1, "
                f"got {n_conv}, {mlp_layers}, {reduction}"
            )
        self.reduced_size = (math.ceil(h / reduction), math.ceil(w / reduction))
        layers: list[nn.Module] = []
        for _ in range(n_conv):
            layers += [nn.Conv2d(c, c, 1, bias=False), _norm2d(c, batchnorm), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        flat = 4 * c
        if mlp_layers > 0:
            hidden = flat if mlp_width is None else int(mlp_width)
            mlp: list[nn.Module] = []
            for i in range(mlp_layers):
                mlp += [
                    nn.Linear(flat if i == 0 else hidden, hidden),
                    nn.BatchNorm1d(hidden) if batchnorm else nn.Identity(),
                    nn.ReLU(inplace=True),
                ]
            mlp.append(nn.Linear(hidden, num_classes))
            self.bn: nn.Module = nn.Identity()
            self.classifier = nn.Sequential(*mlp)
        else:
            self.bn = _norm2d(c, batchnorm)
            self.classifier = nn.Sequential(nn.Linear(flat, num_classes))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(t, self.reduced_size)
        out = self.convs(out)
        out = self.bn(F.adaptive_avg_pool2d(out, (2, 2)))
        return self.classifier(out.flatten(1))


def mlp_sr_head(
    in_shape: Sequence[int],
    num_classes: int,
    *,
    image_shape: Sequence[int] = (3, 32, 32),
    n_conv: int = 3,
    mlp_layers: int = 3,
    mlp_width: int | None = None,
    reduction: int = 4,
    batchnorm: bool = True,
) -> MLPSRHead:
    """DGL's MLP-SR head (Belilovsky 2020, DGL ``auxiliary_nets_study/models.py``); see :class:`MLPSRHead`.

    Options: ``n_conv`` (the code's ``n_lin``, 3), ``mlp_layers`` (3), ``mlp_width`` (default 4C),
    ``reduction`` (first pooling divides H and W by this, 4), ``batchnorm`` (True). ``image_shape`` is unused.
    """
    return MLPSRHead(
        in_shape, num_classes, n_conv=n_conv, mlp_layers=mlp_layers, mlp_width=mlp_width, reduction=reduction,
        batchnorm=batchnorm,
    )


# --- InfoPro (Wang et al., 2021) ----------------------------------------------------------------------------


def _infopro_1c2f(
    channels: int, out_features: int, *, feature_dim: int, widen: float, downsample: bool | None
) -> nn.Sequential:
    """InfoPro's ``1c2f`` network: one conv, two fully connected layers (``networks/auxiliary_nets.py``).

    The authors define it for C in {16, 32, 64} only: 16 -> 32 and 32 -> 64 with stride 2, 64 -> 64 with
    stride 1. The rule generalised here: C < 64 -> 2C channels with stride 2, otherwise C channels with stride
    1 (reproduces all three of the authors' cases; ``downsample`` overrides it).
    """
    if downsample is None:
        downsample = channels < 64
    conv_out = int((2 * channels if downsample else channels) * widen)
    hidden = int(feature_dim * widen)
    return nn.Sequential(
        nn.Conv2d(channels, conv_out, 3, stride=2 if downsample else 1, padding=1, bias=False),
        nn.BatchNorm2d(conv_out),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(conv_out, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_features),
    )


class InfoProHead(nn.Module):
    """InfoPro's two auxiliary networks (Wang et al., ICLR 2021): the image decoder and the ``1c2f`` head.

    Source: github.com/blackfeather-wang/InfoPro-Pytorch, ``Experiments on CIFAR-SVHN-STL10/networks/
    auxiliary_nets.py`` (``Decoder``, ``AuxClassifier`` with ``net_config='1c2f'``).

    * ``reconstruct(t)``: interpolate T to the image size (bilinear, align_corners=True, or nearest) ->
      conv3x3 (C -> 12*widen, bias) -> BN -> ReLU -> conv3x3 (-> image channels, bias). Returns the *logits*;
      ``torch.sigmoid(head.reconstruct(t))`` is the authors' decoder output (their decoder ends with a Sigmoid
      and feeds ``nn.BCELoss``). :func:`infopro_reconstruction_loss` computes either the authors' loss
      (sigmoid, then BCE with the log clamped at -100) or the exact binary cross-entropy of the logits; the two
      differ where the sigmoid saturates in float32 (see there).
    * ``forward(t)``: class logits from a ``1c2f`` network with ``num_classes`` outputs.
    * ``project(t)`` (``loss_mode='contrast'`` only): the ``1c2f`` contrastive head with ``feature_dim``
      outputs, L2-normalised, as the authors feed it to ``SupConLoss``.

    ``loss_mode`` is the authors' ``local_loss_mode``: ``'contrast'`` (their default and every published CIFAR
    command) or ``'cross_entropy'``. In ``'cross_entropy'`` mode ``forward`` *is* the authors' auxiliary
    classifier. In ``'contrast'`` mode the authors have no classifier at all; ``forward`` is then an extra
    ``1c2f`` probe that :func:`infopro_local_loss` trains with CE on the *detached* features, so it never
    changes the module's training (a departure needed only to report the module's auxiliary accuracy).

    Initialisation: PyTorch's defaults; :func:`init_like_authors` applies the authors' init loop (the InfoPro
    method does, unless ``--set aux_init=pytorch``).

    Departures: the authors' ``1c2f`` exists for C in {16, 32, 64}; see :func:`_infopro_1c2f` for the general
    rule. The decoder interpolates to (H, W) of ``image_shape`` (the authors: a square ``image_size``).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        *,
        image_shape: Sequence[int] = (3, 32, 32),
        loss_mode: str = "contrast",
        feature_dim: int = 128,
        widen: float = 1.0,
        decoder_width: int = 12,
        interpolate_mode: str = "bilinear",
        downsample: bool | None = None,
    ) -> None:
        super().__init__()
        c, _, _ = _check_shape(in_shape)
        img_c, img_h, img_w = _check_shape(image_shape, "image_shape")
        if loss_mode not in ("contrast", "cross_entropy"):
            raise ConfigError(
                f"infopro head: loss_mode must be 'contrast' or 'cross_entropy', got {loss_mode!r}"
            )
        if interpolate_mode not in ("bilinear", "nearest"):
            raise ConfigError(
                f"infopro head: interpolate_mode must be 'bilinear' or 'nearest', got {interpolate_mode!r}"
            )
        self.loss_mode = loss_mode
        self.image_size = (img_h, img_w)
        self.interpolate_mode = interpolate_mode
        dec = int(decoder_width * widen)
        self.decoder = nn.Sequential(
            nn.Conv2d(c, dec, 3, stride=1, padding=1),
            nn.BatchNorm2d(dec),
            nn.ReLU(),
            nn.Conv2d(dec, img_c, 3, stride=1, padding=1),
        )
        kw = {"feature_dim": feature_dim, "widen": widen, "downsample": downsample}
        self.classifier = _infopro_1c2f(c, num_classes, **kw)
        self.projector = _infopro_1c2f(c, feature_dim, **kw) if loss_mode == "contrast" else None

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.classifier(t)

    def project(self, t: torch.Tensor) -> torch.Tensor:
        """The L2-normalised contrastive embedding (N, feature_dim); ``loss_mode='contrast'`` only."""
        if self.projector is None:
            raise RuntimeError("this InfoPro head was built with loss_mode='cross_entropy': no projector")
        return F.normalize(self.projector(t), dim=1)

    def reconstruct(self, t: torch.Tensor) -> torch.Tensor:
        """Logits of the reconstructed image, (N, image C, image H, image W)."""
        if self.interpolate_mode == "bilinear":
            up = F.interpolate(t, size=self.image_size, mode="bilinear", align_corners=True)
        else:
            up = F.interpolate(t, size=self.image_size, mode="nearest")
        return self.decoder(up)


infopro_head = InfoProHead
"""Builder name of the ``infopro`` head (the class itself: options ``image_shape``, ``loss_mode`` ('contrast'),
``feature_dim`` (128, ``--aux_net_feature_dim``), ``widen`` (1.0, ``--aux_net_widen``), ``decoder_width`` (12),
``interpolate_mode`` ('bilinear'), ``downsample`` (None: stride 2 and 2C channels in the conv iff C < 64))."""


AUX_INITS = ("authors", "pytorch")
"""Initialisations of InfoPro's auxiliary networks: the authors' init loop, or PyTorch's defaults."""


@torch.no_grad()
def init_like_authors(module: nn.Module) -> nn.Module:
    """Re-initialise ``module`` (in place, and return it) as InfoPro's ``InfoProResNet.__init__`` does.

    The authors' loop ``for m in self.modules()`` (``networks/resnet.py``) runs after the decoders and auxiliary
    classifiers are registered on the network, so it covers them too: every ``Conv2d`` weight is drawn from
    N(0, sqrt(2 / (k_h * k_w * out_channels))) (Kaiming normal, fan-out), every ``BatchNorm2d`` gets weight 1
    and bias 0. Conv biases, ``Linear`` and ``BatchNorm1d`` layers keep PyTorch's defaults (the loop does not
    touch them). Modules are visited in ``modules()`` order, as the authors' loop does.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.normal_(0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.fill_(1.0)
            m.bias.zero_()
    return module


# --- linear probe -------------------------------------------------------------------------------------------


class LinearHead(nn.Module):
    """Global average pooling + one linear layer: a cheap probe.

    It is InfoPro's ``0c1f`` configuration ("Greedy SL" in their code, ``networks/auxiliary_nets.py``).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        c, _, _ = _check_shape(in_shape)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.classifier(t.mean(dim=(2, 3)))


def linear_head(
    in_shape: Sequence[int], num_classes: int, *, image_shape: Sequence[int] = (3, 32, 32)
) -> LinearHead:
    """Global average pool + Linear(C -> classes); see :class:`LinearHead`. ``image_shape`` is unused."""
    return LinearHead(in_shape, num_classes)


# --- registry -----------------------------------------------------------------------------------------------

HEADS: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "conv": (conv_head, "greedy layer-wise: 2x[conv3x3-BN-ReLU], pool to 2x2, BN, linear (Belilovsky 2019)"),
    "mlp_sr": (mlp_sr_head, "DGL MLP-SR: pool /4, 3x[conv1x1-BN-ReLU], 2x2, 3-layer MLP (Belilovsky 2020)"),
    "infopro": (infopro_head, "InfoPro: image decoder + 1c2f head (1 conv, 2 fc), contrastive (Wang 2021)"),
    "linear": (linear_head, "global average pool + linear: a cheap probe (InfoPro's 0c1f)"),
}
"""Head name -> (builder, one-line description)."""


def build_head(
    name: str,
    in_shape: Sequence[int],
    num_classes: int,
    *,
    image_shape: Sequence[int] = (3, 32, 32),
    **options,
) -> nn.Module:
    """Build the auxiliary head ``name`` for module outputs of shape ``in_shape`` = (C, H, W).

    Args:
        name: one of :data:`HEADS` (``conv``, ``mlp_sr``, ``infopro``, ``linear``).
        in_shape: (C, H, W) of the module's output (``StagedNet.feature_shapes[k]``).
        num_classes: number of logits ``forward`` returns.
        image_shape: (C, H, W) of the network input (the InfoPro decoder reconstructs it; others ignore it).
        **options: head-specific options (see each builder's docstring); unknown ones are refused.

    Raises:
        ConfigError: unknown head name or option, or a bad shape.
    """
    if name not in HEADS:
        raise ConfigError(f"unknown auxiliary head {name!r}; known heads: {', '.join(sorted(HEADS))}")
    builder = HEADS[name][0]
    accepted = [
        p.name for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "image_shape"
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for head {name!r}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    image_shape = _check_shape(image_shape, "image_shape")
    return builder(_check_shape(in_shape), int(num_classes), image_shape=image_shape, **options)


# --- InfoPro losses and weights -----------------------------------------------------------------------------


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or as it is when it is already float32 or float64 (losses of float64 models stay exact)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _channel_stats(values, x: torch.Tensor, what: str) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) float32 tensor on ``x``'s device, checked for [0, 1] units."""
    on_accelerator = isinstance(values, torch.Tensor) and values.device.type != "cpu"
    if not on_accelerator:  # checking a device tensor would synchronise the device on every step
        largest = max(abs(v) for v in torch.as_tensor(values, dtype=torch.float64).flatten().tolist())
        if largest > 1.0 + 1e-6:
            raise ValueError(
                f"{what} must be in [0, 1] pixel units (e.g. the dataset's ``mean``/``std``), "
                f"got values up to {largest:.3g}; DeviceData.mean/std are in 0..255 units, divide them by 255"
            )
    stats = torch.as_tensor(values, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    if stats.shape[1] != x.shape[1]:
        raise ValueError(f"{what} has {stats.shape[1]} values but the images have {x.shape[1]} channels")
    return stats


RECONSTRUCTION_LOSSES = ("authors", "exact")
"""Forms of InfoPro's reconstruction loss (see :func:`infopro_reconstruction_loss`)."""


def infopro_reconstruction_loss(
    head: InfoProHead, t: torch.Tensor, x_images_normalised: torch.Tensor, mean, std, *, mode: str = "authors"
) -> torch.Tensor:
    """InfoPro's reconstruction term (estimates I(h, x)): BCE of the decoded image vs the input in [0, 1].

    As ``InfoProResNet._image_restore`` + ``Decoder.forward`` (``networks/resnet.py``,
    ``networks/auxiliary_nets.py``): the target is the network input un-normalised, ``x * std + mean`` (per
    channel, [0, 1] units), and the loss is the mean binary cross-entropy over all pixels. The target is
    clamped to [0, 1] (a no-op up to rounding for images that came from [0, 1]).

    ``mode``:

    * ``"authors"`` (default): ``sigmoid`` of the decoder's logits, then ``F.binary_cross_entropy`` -- exactly
      the authors' ``nn.Sigmoid`` + ``nn.BCELoss``, which clamps each log at -100. Where a logit exceeds
      about 17 (below about -88 for the other side), the float32 sigmoid is exactly 1 (0): the pixel then adds
      ``100 * (1 - target)`` (``100 * target``) to the loss and passes no gradient back.
    * ``"exact"``: ``binary_cross_entropy_with_logits``, the mathematically identical loss computed stably:
      no clamp, and a saturated pixel still gets the gradient ``sigmoid(logit) - target``.

    Both are computed in float32 (float64 for a float64 model) with autocast off (``binary_cross_entropy`` is
    refused under autocast), so the loss is safe under bf16 mixed precision.

    Args:
        head: an :class:`InfoProHead`.
        t: the module's output T_k (with gradient).
        x_images_normalised: the (augmented) normalised input batch the module chain saw.
        mean, std: the per-channel normalisation statistics in [0, 1] units (sequence or tensor).
        mode: ``"authors"`` or ``"exact"``.
    """
    if mode not in RECONSTRUCTION_LOSSES:
        raise ConfigError(f"reconstruction_loss {mode!r} is not one of {', '.join(RECONSTRUCTION_LOSSES)}")
    x = _at_least_float32(x_images_normalised)
    target = (x * _channel_stats(std, x, "std") + _channel_stats(mean, x, "mean")).clamp(0.0, 1.0)
    logits = head.reconstruct(t)
    if logits.shape != target.shape:
        raise ValueError(f"decoder output {tuple(logits.shape)} != image batch {tuple(target.shape)}")
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = _at_least_float32(logits)
        if mode == "exact":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.binary_cross_entropy(torch.sigmoid(logits), target)


def supervised_contrastive_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    temperature: float = 0.07,
    *,
    base_temperature: float = 0.07,
    normalize: bool = True,
) -> torch.Tensor:
    """The supervised contrastive loss as InfoPro uses it (one view, ``contrast_mode='all'``).

    Source: InfoPro ``networks/losses.py`` (``SupConLoss``, Khosla et al. 2020), called from
    ``AuxClassifier.forward`` with L2-normalised features of shape [N, 1, D] and ``temperature=0.07``::

        s_ij = z_i . z_j / temperature,   log p_ij = s_ij - log sum_{a != i} exp(s_ia)
        loss = -(temperature / base_temperature) * mean_i [ sum_{j != i, y_j = y_i} log p_ij / max(1, P_i) ]

    with P_i the number of positives of anchor i; an anchor without positives contributes 0 and still counts
    in the mean, as in the authors' code.

    Args:
        z: embeddings (N, D); L2-normalised here unless ``normalize=False`` (the authors normalise just
            before calling ``SupConLoss``).
        y: integer labels (N,).
    """
    z = _at_least_float32(z)
    if normalize:
        z = F.normalize(z, dim=1)
    n = z.shape[0]
    if n < 2:  # no pair to contrast (the authors' code returns NaN here)
        return z.sum() * 0.0
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{y.shape[0]} labels for {n} embeddings")
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    with torch.autocast(z.device.type, enabled=False):  # the similarities in float32 even under bf16 autocast
        sim = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    mean_log_prob_pos = log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1).clamp(min=1)
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()


def infopro_lambdas(
    k: int, K: int, ixx_1: float, ixy_1: float, ixx_2: float, ixy_2: float
) -> tuple[float, float]:
    """InfoPro's loss weights (lambda_reconstruction, lambda_ce) for module ``k`` (0-based) of ``K``.

    Exactly ``InfoProResNet.forward`` (InfoPro ``networks/resnet.py``), local modules k = 0 .. K-2::

        ratio    = k / (K - 2) if K > 2 else 0
        lambda_1 = ixx_1 * (1 - ratio) + ixx_2 * ratio        # weight of the reconstruction (BCE) term
        lambda_2 = ixy_1 * (1 - ratio) + ixy_2 * ratio        # weight of the I(h, y) term

    so ``ixx_1, ixy_1`` are the weights of the first module and ``ixx_2, ixy_2`` those of module K-2
    (``train.py``: "lambda_1 and lambda_2 for 1st and (K-1)th local module", changing linearly in between).
    The I(h, y) term is the supervised contrastive loss in the authors' default ``contrast`` mode, CE in
    ``cross_entropy`` mode. The last module (k = K-1) is trained with the network's own classifier and plain
    CE: it gets ``(0.0, 1.0)``.
    """
    if K < 1 or not 0 <= k < K:
        raise ConfigError(f"module index k={k} is not in 0..K-1 for K={K}")
    if k == K - 1:
        return 0.0, 1.0
    ratio = k / (K - 2) if K > 2 else 0.0
    return ixx_1 * (1 - ratio) + ixx_2 * ratio, ixy_1 * (1 - ratio) + ixy_2 * ratio


def infopro_local_loss(
    head: InfoProHead,
    t: torch.Tensor,
    x_images_normalised: torch.Tensor,
    y: torch.Tensor,
    mean,
    std,
    lambda_reconstruction: float,
    lambda_ce: float,
    *,
    temperature: float = 0.07,
    reconstruction_loss: str = "authors",
    defer: Callable[[Callable[[], tuple[torch.Tensor, torch.Tensor]]], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """InfoPro's local loss of one (non-last) module, and class logits for the accuracy: ``(loss, logits)``.

    ``loss = lambda_reconstruction * BCE(decoder) + lambda_ce * I(h,y)-term`` as in ``InfoProResNet.forward``,
    where the I(h, y) term is the supervised contrastive loss of ``head.project(t)``
    (``loss_mode='contrast'``) or CE of ``head(t)`` (``'cross_entropy'``). Both terms are always computed, as
    in the authors' code (a zero weight multiplies them). ``reconstruction_loss`` is the ``mode`` of
    :func:`infopro_reconstruction_loss`.

    In contrast mode the probe (``head(t.detach())`` trained with CE; it trains only the probe) is not part of
    the authors' loss. With ``defer`` (the engine's ``LocalStep.defer``) it is handed over as
    ``fn() -> (probe_loss, logits)``, to run after the module's backward, and the result is ``(loss, None)``:
    ``loss`` is then exactly the authors' module loss. Without ``defer`` the probe's CE is added to the loss
    and its logits returned.
    """
    loss = lambda_reconstruction * infopro_reconstruction_loss(
        head, t, x_images_normalised, mean, std, mode=reconstruction_loss
    )
    if head.loss_mode != "contrast":
        logits = head(t)
        return loss + lambda_ce * F.cross_entropy(logits, y), logits
    loss = loss + lambda_ce * supervised_contrastive_loss(head.project(t), y, temperature)
    features = t.detach()

    def probe() -> tuple[torch.Tensor, torch.Tensor]:
        logits = head(features)
        return F.cross_entropy(logits, y), logits

    if defer is not None:
        defer(probe)
        return loss, None
    probe_loss, logits = probe()
    return loss + probe_loss, logits


INFOPRO_DEFAULTS: dict = {
    "head": {
        "aux_net_config": "1c2f",
        "loss_mode": "contrast",
        "feature_dim": 128,
        "widen": 1.0,
        "decoder_width": 12,
        "interpolate_mode": "bilinear",
        "temperature": 0.07,
    },
    # CIFAR-10, from ``Experiments on CIFAR-SVHN-STL10/comand.sh`` (the ResNet-110 rows also in its
    # README.md). arch -> K -> weights for infopro_lambdas(k, K, **weights). "resnet110_balanced_memory" is
    # InfoPro* (the ``InfoPro_balanced_memory`` module boundaries of networks/configs.py,
    # ``--balanced_memory``).
    "cifar10": {
        "resnet32": {
            2: {"ixx_1": 5.0, "ixy_1": 1.0, "ixx_2": 0.0, "ixy_2": 0.0},
            4: {"ixx_1": 6.0, "ixy_1": 0.0, "ixx_2": 1.0, "ixy_2": 2.0},
            8: {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 0.0, "ixy_2": 2.0},
            16: {"ixx_1": 5.0, "ixy_1": 0.05, "ixx_2": 0.2, "ixy_2": 0.5},
        },
        "resnet110": {
            2: {"ixx_1": 5.0, "ixy_1": 0.5, "ixx_2": 0.0, "ixy_2": 0.0},
            4: {"ixx_1": 1.0, "ixy_1": 0.0, "ixx_2": 0.0, "ixy_2": 1.0},
            8: {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 0.0, "ixy_2": 1.0},
            16: {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 0.5, "ixy_2": 1.0},
        },
        "resnet110_balanced_memory": {
            2: {"ixx_1": 5.0, "ixy_1": 0.1, "ixx_2": 0.0, "ixy_2": 0.0},
            3: {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 5.0, "ixy_2": 0.1},
            4: {"ixx_1": 5.0, "ixy_1": 0.0, "ixx_2": 5.0, "ixy_2": 0.1},
        },
    },
    # train.py, ``training_configurations['resnet']`` for cifar10/svhn, with ``--cos_lr`` as in every command
    # (cosine over 160 epochs, the first 10 epochs warmed up from 0.01).
    "training": {
        "epochs": 160,
        "batch_size": 1024,
        "lr": 0.8,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,
        "lr_schedule": "cosine",
        "normalize_mean": (125.3 / 255, 123.0 / 255, 113.9 / 255),
        "normalize_std": (63.0 / 255, 62.1 / 255, 66.7 / 255),
    },
}
"""The InfoPro authors' CIFAR-10 defaults: head settings, published lambda weights per arch and K, recipe."""


def infopro_published_weights(arch: str, K: int, dataset: str = "cifar10") -> dict[str, float]:
    """The authors' ``ixx_1, ixy_1, ixx_2, ixy_2`` for ``arch`` split into ``K`` modules (INFOPRO_DEFAULTS).

    ``arch`` may carry a ``cifar_`` prefix (``cifar_resnet32`` = ``resnet32``). Raises ConfigError when the
    authors published no values for that combination, naming the ones they did.
    """
    table = INFOPRO_DEFAULTS.get(dataset)
    if not isinstance(table, dict) or dataset in ("head", "training"):
        raise ConfigError(f"no published InfoPro weights for dataset {dataset!r}; known: cifar10")
    key = arch.removeprefix("cifar_")
    if key not in table or K not in table[key]:
        known = "; ".join(f"{a}: K in {sorted(ks)}" for a, ks in table.items())
        raise ConfigError(f"the InfoPro authors published no weights for {arch} with K={K} ({known})")
    return dict(table[key][K])
