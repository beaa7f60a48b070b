"""Readers and a writer for the checkpoint files users bring: no torch needed.

  .safetensors   timm's layout on the Hugging Face hub; `safetensors.numpy`.
  .pth / .pt     torch.save's zip archive (torch >= 1.6): `<name>/data.pkl`
                 is a pickle of the state dict whose tensors refer to raw
                 storages stored as `<name>/data/<key>`. Read by a restricted
                 unpickler (below), never by `pickle.load`.
  .npz           big_vision / google-research/vision_transformer: '/'-joined
                 Flax paths, read with `np.load(allow_pickle=False)`.

Each reader returns {name: np.ndarray}.

Security model of the .pth reader. A pickle is a program: its GLOBAL opcodes
name any importable callable and REDUCE calls it, so `pickle.load` of a
downloaded file runs whatever its author wanted. `RestrictedUnpickler`
resolves every global through `find_class`, which knows only the few names a
state dict needs (torch's tensor-rebuild functions, its storage classes and
`collections.OrderedDict`), each mapped to a NumPy stand-in defined here.
Any other name raises `UnsafePickleError` at the GLOBAL opcode itself, before
the REDUCE that would call it, so nothing of the file's choosing runs. Torch
is never imported. Storages are read from the zip as bytes and viewed with the
dtype their (allow-listed) storage class names.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import zipfile
from typing import Any

import jax.numpy as jnp
import numpy as np


class WeightsError(ValueError):
    """A weights file that cannot be read or mapped onto the model."""


class UnsafePickleError(WeightsError):
    """A pickle names a global outside the allow-list; nothing of it was executed."""


FORMATS = ("safetensors", "torch", "npz")

# torch storage class -> element dtype (torch/storage.py's legacy typed storages).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(jnp.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}


class _StorageType:
    """Stand-in for a torch storage class: only its dtype matters."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2 in NumPy: a strided view of the storage, copied."""
    del requires_grad, backward_hooks, metadata
    if not isinstance(storage, np.ndarray):
        raise WeightsError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise WeightsError(f"tensor with size {size} but stride {stride}")
    if any(n == 0 for n in size):
        return np.zeros(size, storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if storage_offset < 0 or min(stride, default=0) < 0 or last >= storage.size:
        raise WeightsError(f"tensor (offset {storage_offset}, size {size}, stride {stride}) "
                           f"reaches outside its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], size, tuple(s * storage.itemsize for s in stride),
        writeable=False)
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    del requires_grad, backward_hooks, state
    return data


# (module, name) -> the object the unpickler returns for that global.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch state dict with NumPy stand-ins; refuses every other global.

    `storage_bytes(key)` returns the raw bytes of storage `key` (the zip's
    `data/<key>` record).
    """

    def __init__(self, file, storage_bytes):
        super().__init__(file)
        self._storage_bytes = storage_bytes
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to unpickle global {module}.{name}: a torch state dict needs only "
                f"{sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS)}; the file may be "
                "malicious, or hold more than a state dict (re-save model.state_dict() "
                "alone, or convert it to .safetensors)") from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"refused persistent id {pid!r}: only "
                                    "('storage', <torch storage class>, key, location, numel)")
        _, storage_type, key, _, numel = pid
        key = str(key)
        if key not in self._storages:
            raw = self._storage_bytes(key)
            dtype = storage_type.dtype
            if len(raw) < numel * dtype.itemsize:
                raise WeightsError(f"storage {key} holds {len(raw)} bytes, fewer than "
                                   f"{numel} x {dtype.itemsize}")
            self._storages[key] = np.frombuffer(raw, dtype, count=numel)
        return self._storages[key]


def read_torch(path: str) -> dict[str, np.ndarray]:
    """A torch.save zip archive's state dict, through `RestrictedUnpickler`."""
    if not zipfile.is_zipfile(path):
        raise WeightsError(
            f"{path}: not a zip archive. Only torch.save's zip format (torch >= 1.6, the "
            "format of torchvision's current weights) is read; re-save the state dict "
            "with a recent torch, or convert it to .safetensors")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsError(f"{path}: a torch zip archive has one <name>/data.pkl; "
                               f"found {pickles}")
        root = pickles[0][:-len("data.pkl")]
        byteorder = root + "byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise WeightsError(f"{path}: big-endian torch archives are not supported")

        def storage_bytes(key: str) -> bytes:
            try:
                return archive.read(f"{root}data/{key}")
            except KeyError:
                raise WeightsError(f"{path}: storage {root}data/{key} is missing") from None

        with archive.open(pickles[0]) as f:
            obj = RestrictedUnpickler(f, storage_bytes).load()
    return _state_dict(obj, path)


def _state_dict(obj: Any, path: str) -> dict[str, np.ndarray]:
    """The {name: array} inside a loaded pickle (a bare state dict, or a training
    checkpoint's {'state_dict' | 'model' | 'state_dict_ema': ...})."""
    if isinstance(obj, dict) and not all(isinstance(v, np.ndarray) for v in obj.values()):
        for key in ("state_dict", "model", "state_dict_ema", "model_ema"):
            if isinstance(obj.get(key), dict):
                return _state_dict(obj[key], path)
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise WeightsError(f"{path}: the pickle holds no state dict of named tensors")
    return dict(obj)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    return dict(load_file(path))


def read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def sniff(path: str) -> str:
    """The format of `path`, from its bytes (the suffix is only a hint)."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        (length,) = struct.unpack("<Q", head[:8])
        if 0 < length <= os.path.getsize(path) - 8:
            return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("/data.pkl") for n in names):
            return "torch"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
    if path.endswith((".pth", ".pt", ".bin")):
        return "torch"  # read_torch explains the legacy format
    raise WeightsError(f"{path}: not a .safetensors, torch zip (.pth) or .npz file")


def read(path: str) -> tuple[dict[str, np.ndarray], str]:
    """({name: array}, format) of a weights file of any supported format."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights file {path!r} does not exist")
    fmt = sniff(path)
    reader = {"safetensors": read_safetensors, "torch": read_torch, "npz": read_npz}[fmt]
    return reader(path), fmt


def write_safetensors(tensors: dict[str, np.ndarray], path: str,
                      metadata: dict[str, Any] | None = None) -> None:
    """Writes {name: array} (contiguous copies) with string metadata (JSON for non-strings)."""
    from safetensors.numpy import save_file
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata=meta)


def safetensors_metadata(path: str) -> dict[str, str]:
    """The string metadata of a .safetensors header (empty when it has none)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return dict(header.get("__metadata__") or {})
