"""Scanning sources and turning planned examples into tfds example dicts.

`scan` decodes every candidate image once (one at a time) before anything is
written, so that corrupt files, mixed sizes and empty classes fail the build
early, and `skip_corrupt` can drop files before the plan is drawn. `Materializer`
then produces the examples of one original at a time: the original's bytes are
kept when they can be, and generated copies are augmented in pixel space from the
original (never from an encoded copy), then encoded once.
"""

import collections
import copy
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from augbal_datasets.augbal import config as config_lib
from augbal_datasets.augbal import images
from augbal_datasets.augbal import sampling
from augbal_datasets.augbal import sources

_LOG = logging.getLogger(__name__)
_PROGRESS_EVERY_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What the scan learnt about one readable original."""

    height: int
    width: int
    keep_bytes: bool  # the file's bytes can be stored unchanged (8-bit RGB JPEG/PNG)


@dataclasses.dataclass
class ScanResult:
    """Readable images per class and pool, their info, and the skipped files."""

    pools: dict[str, dict[str, list[str]]]
    info: dict[str, ImageInfo]
    skipped: list[dict[str, str]]
    layout: str


def select_classes(source: sources.Source, listed: Sequence[sources.SourceImage],
                   requested: Sequence[str] | None) -> list[str]:
    """The classes to build, in label order; checks names and empty class folders."""
    present = source.class_order({image.label for image in listed})
    if isinstance(source, sources.ManualSource):
        empty = sorted(set(source.class_dirs()) - set(present))
        folders = source.class_dirs()
        for name in empty:
            if requested is None or name in requested:
                raise ValueError(f"class folder {str(folders[name][0])!r} (class {name!r}) "
                                 "holds no image files")
    if requested is None:
        if len(present) < 2:
            raise ValueError(f"the source has {len(present)} class(es) {present}; at least 2 needed")
        return present
    unknown = [name for name in requested if name not in present]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown} in config field 'classes'; "
                         f"the source has {present}")
    return list(requested)


# A study builds one variant per cell from the same folder, so a process (a study's child trains
# many cells) keeps the last few scans of a manual source, each valid while its class folders and
# every listed file keep their names, sizes and modification times. Deep copies out: the caller may
# change them.
_SCANS: collections.OrderedDict = collections.OrderedDict()
_SCANS_KEPT = 4


def scan(source: sources.Source, classes_requested: Sequence[str] | None, skip_corrupt: bool,
         store_size: int | None, num_workers: int | None = None) -> tuple[list[str], ScanResult]:
    """Lists and decodes every candidate image once (never more than a few at a time).

    A manual source scanned earlier in this process with the same arguments and an unchanged
    listing (ids, file sizes, modification times) is not decoded again.

    `num_workers`: decoding threads; None picks automatically, 1 stays serial.

    Raises:
      ValueError: unknown or empty class, mixed sizes without `store_size`.
      images.ImageError: a corrupt / truncated / non-image file (unless `skip_corrupt`).
    """
    listed = source.list_images()
    key = _scan_key(source, listed, classes_requested, skip_corrupt, store_size)
    if key is None or key not in _SCANS:
        result = _scan_listed(source, listed, classes_requested, skip_corrupt, store_size, num_workers)
        if key is None:
            return result
        _SCANS[key] = result
        while len(_SCANS) > _SCANS_KEPT:
            _SCANS.popitem(last=False)
    _SCANS.move_to_end(key)
    return copy.deepcopy(_SCANS[key])


def _scan_key(source: sources.Source, listed: Sequence[sources.SourceImage], classes_requested,
              skip_corrupt: bool, store_size: int | None) -> tuple | None:
    """What a scan of a local manual folder depends on (None: not kept)."""
    if not isinstance(source, sources.ManualSource):
        return None
    root = os.fspath(source.root)
    try:
        files = tuple((image.source_id, image.label, image.pool, stat.st_size, stat.st_mtime_ns)
                      for image in listed for stat in (os.stat(os.path.join(root, image.source_id)),))
    except (OSError, TypeError):  # Not a local path (epath's cloud folders): scanned every time.
        return None
    classes = None if classes_requested is None else tuple(classes_requested)
    # The class folders too: an empty one fails the scan (`select_classes`) but lists no file.
    return os.path.realpath(root), classes, skip_corrupt, store_size, tuple(sorted(source.class_dirs())), files


def _scan_listed(source: sources.Source, listed: Sequence[sources.SourceImage], classes_requested,
                 skip_corrupt: bool, store_size: int | None, num_workers: int | None):
    classes = select_classes(source, listed, classes_requested)
    selected = set(classes)
    wanted = [image for image in listed if image.label in selected]
    pools = {name: {sources.TRAIN: [], sources.TEST: []} for name in classes}
    info, skipped = {}, []
    by_id = {image.source_id: image for image in wanted}
    first_size = None
    progress = _Progress("scanning sources", len(wanted))
    for source_id, probed in _probe_all(source, sorted(by_id), num_workers):
        image = by_id[source_id]
        if isinstance(probed, images.ImageError):
            if not skip_corrupt:
                raise images.ImageError(f"{probed} (set skip_corrupt=true to skip such files)")
            skipped.append({"source_id": source_id, "error": str(probed)})
            continue
        height, width, keep_bytes = probed
        if store_size is None:
            if first_size is None:
                first_size = (source_id, height, width)
            elif (height, width) != first_size[1:]:
                raise ValueError(f"mixed image sizes: {first_size[0]!r} is {first_size[2]}x{first_size[1]} "
                                 f"but {source_id!r} is {width}x{height}; set store_size to resize "
                                 "on write")
        info[source_id] = ImageInfo(height, width, keep_bytes=keep_bytes)
        pools[image.label][image.pool].append(source_id)
        progress.step()
    for name in classes:
        if not any(pools[name].values()):
            raise ValueError(f"class {name!r} has no readable images "
                             f"({sum(1 for s in skipped if by_id[s['source_id']].label == name)} skipped)")
    if not source.has_test_pool:
        pools = {name: {sources.TRAIN: pools[name][sources.TRAIN]} for name in classes}
    layout = getattr(source, "layout", type(source).__name__)
    return classes, ScanResult(pools=pools, info=info, skipped=skipped, layout=layout)


def _probe(source_id: str, data: bytes | np.ndarray):
    """(height, width, keep_bytes), or the ImageError (returned: threads report in order)."""
    try:
        if isinstance(data, bytes):
            height, width, image_format, converted = images.probe(data, source_id)
            return height, width, image_format in ("jpeg", "png") and not converted
        rgb = _decode(data, source_id).rgb
        return rgb.shape[0], rgb.shape[1], False
    except images.ImageError as error:
        return error


# Below this many files a thread pool costs more than it saves.
_PARALLEL_MIN_FILES = 200


def _probe_all(source: sources.Source, source_ids: Sequence[str], num_workers: int | None):
    """Yields (id, _probe result) in id order; decodes on threads for large random-access sources."""
    if num_workers is None:
        num_workers = 1 if len(source_ids) < _PARALLEL_MIN_FILES else min(os.cpu_count() or 1, 8)
    if not source.random_access or num_workers < 2:
        for source_id, data in source.iter_read(source_ids):
            yield source_id, _probe(source_id, data)
        return

    def work(source_id):
        return _probe(source_id, source.read(source_id))

    yield from zip(source_ids, _bounded_map(work, source_ids, num_workers))


def _bounded_map(function, items, num_threads):
    """Like map, on a thread pool, with at most a few items in flight (bounded memory).

    Threads, not processes: OpenCV and most numpy work release the GIL, and worker
    processes would re-import the caller's main module (spawn) or copy its
    TensorFlow threads (fork).
    """
    from concurrent import futures  # pylint: disable=import-outside-toplevel
    with futures.ThreadPoolExecutor(num_threads, thread_name_prefix="augbal") as pool:
        pending = collections.deque()
        iterator = iter(items)
        for item in iterator:
            pending.append(pool.submit(function, item))
            if len(pending) >= 4 * num_threads:
                break
        for item in iterator:
            yield pending.popleft().result()
            pending.append(pool.submit(function, item))
        while pending:
            yield pending.popleft().result()


def _decode(data: bytes | np.ndarray, name: str) -> images.DecodedImage:
    if isinstance(data, bytes):
        return images.decode(data, name)
    rgb, _ = images.to_rgb(np.asarray(data), name, bgr=False)
    return images.DecodedImage(rgb=rgb, format="array", converted=True)


class _StoredOriginals:
    """The stored (decoded, resized, encoded) bytes of recent originals, up to `limit` bytes in all.

    Every variant of a study stores its real images the same way, so a process that builds
    many of them (a study's child) encodes each original once. Thread-safe (the builder's
    threads share it); keyed by the file's sha256, the store size and the encoding.
    """

    def __init__(self, limit: int):
        self.limit, self.size = limit, 0
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> bytes | None:
        with self._lock:
            if key is None or key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value: bytes) -> None:
        if key is None or len(value) > self.limit:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.size += len(value)
            while self.size > self.limit:
                self.size -= len(self._items.popitem(last=False)[1])


_STORED = _StoredOriginals(64 << 20)


def _stored_key(data: bytes | np.ndarray, store_size: int | None, encoding: str) -> tuple | None:
    if not isinstance(data, bytes):  # In-memory sources (the sample) decode nothing.
        return None
    return hashlib.sha256(data).digest(), store_size, encoding


class Materializer:
    """Turns the planned examples of one original into tfds example dicts.

    Picklable (holds only the config, the source and per-image info), so Beam
    workers and worker processes can each build their own transforms.
    """

    def __init__(self, config: config_lib.VariantConfig, source: sources.Source,
                 info: Mapping[str, ImageInfo]):
        self.config = config
        self.source = source
        self.info = dict(info)
        self._transforms: dict[str, Any] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_transforms"] = {}
        return state

    def examples(self, source_id: str, data: bytes | np.ndarray,
                 specs: Sequence[sampling.ExampleSpec]) -> list[tuple[str, dict[str, Any]]]:
        """The (key, example) pairs of every spec of one original."""
        store_size = self.config.store_size
        info = self.info[source_id]
        resized = store_size is not None and (info.height, info.width) != (store_size, store_size)
        rgb = None
        stored_key = _stored_key(data, store_size, self.config.encoding)
        original_bytes = _STORED.get(stored_key)
        out = []
        for spec in specs:
            if spec.kind != sampling.GENERATED and info.keep_bytes and not resized:
                image, name, params = data, "", "{}"
            elif spec.kind != sampling.GENERATED and original_bytes is not None:
                image, name, params = original_bytes, "", "{}"  # Stored by an earlier variant: not decoded.
            else:
                if rgb is None:
                    rgb = _decode(data, source_id).rgb
                    if store_size is not None:
                        rgb = images.resize(rgb, store_size)
                if spec.kind == sampling.GENERATED:
                    pixels, name, params = self._augment(rgb, spec.chain)
                    image = images.encode(pixels, self.config.encoding)
                else:
                    if original_bytes is None:
                        original_bytes = images.encode(rgb, self.config.encoding)
                        _STORED.put(stored_key, original_bytes)
                    image, name, params = original_bytes, "", "{}"
            out.append((spec.key, {
                "image": image,
                "label": spec.label,
                "source_id": spec.source_id,
                "augmentation": name,
                "augmentation_params": params,
                "generated": spec.generated,
            }))
        return out

    def _augment(self, rgb: np.ndarray, chain: Sequence[str]) -> tuple[np.ndarray, str, str]:
        steps = []
        pixels = rgb
        for step_key in chain:
            # Each step has its own generator from (data_seed, its key): a rebuild is
            # identical whatever order or process the examples are produced in.
            rng = sampling.seeded_rng(self.config.data_seed, step_key)
            names = self.config.augmentation_names
            # A policy (a tuple, even of one) draws one of its transforms per step.
            name = (names[int(rng.integers(len(names)))] if isinstance(self.config.augmentation, tuple)
                    else names[0])
            transform = self._transform(name)
            result = np.asarray(transform(pixels, rng=rng))
            if result.shape != pixels.shape or result.dtype != np.uint8:
                # e.g. Transpose of a non-square image: the split would mix sizes.
                raise ValueError(f"augmentation {transform.name} turned a {pixels.shape} uint8 image "
                                 f"into {result.shape} {result.dtype} (example {step_key!r}); "
                                 "set a square store_size or choose another augmentation")
            pixels = result
            steps.append((transform.name, transform.params))
        if len(steps) == 1:
            return pixels, steps[0][0], _json(steps[0][1])
        return (pixels, ">".join(name for name, _ in steps),
                _json({"steps": [{"augmentation": n, "params": p} for n, p in steps]}))

    def _transform(self, name: str):
        if name not in self._transforms:
            self._transforms[name] = config_lib.create_transform(name, self.config.transform_params(name))
        return self._transforms[name]


def group_by_source(specs: Iterable[sampling.ExampleSpec]) -> list[tuple[str, list[sampling.ExampleSpec]]]:
    """(source id, its specs) in source-id order: one decode serves every copy."""
    groups: dict[str, list[sampling.ExampleSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.source_id, []).append(spec)
    return sorted(groups.items())


def iter_examples(materializer: Materializer,
                  groups: Sequence[tuple[str, list[sampling.ExampleSpec]]],
                  split: str, num_workers: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields the examples of one split, one original at a time.

    Args:
      materializer: produces the examples of one original.
      groups: (source id, specs) pairs from `group_by_source`.
      split: split name, for progress messages.
      num_workers: worker processes for decoding and augmenting; None picks
        automatically (in-process for small splits), 1 stays in-process.
    """
    progress = _Progress(f"writing {split}", sum(len(specs) for _, specs in groups))
    if num_workers is None:
        num_workers = auto_workers(materializer, groups)
    if num_workers > 1 and materializer.source.random_access:
        results = _parallel_examples(materializer, groups, num_workers)
    else:
        results = _serial_examples(materializer, groups)
    for key_examples in results:
        progress.step(len(key_examples))
        yield from key_examples


# Below this many examples that need pixel work, threads do not pay for themselves.
_PARALLEL_MIN_EXAMPLES = 100


def auto_workers(materializer: Materializer,
                 groups: Sequence[tuple[str, list[sampling.ExampleSpec]]]) -> int:
    """Worker processes worth starting for these groups (1 = in-process)."""
    heavy = sum(1 for source_id, specs in groups for spec in specs
                if spec.generated or not materializer.info[source_id].keep_bytes)
    if heavy < _PARALLEL_MIN_EXAMPLES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _serial_examples(materializer, groups):
    specs_by_id = dict(groups)
    for source_id, data in materializer.source.iter_read([source_id for source_id, _ in groups]):
        yield materializer.examples(source_id, data, specs_by_id[source_id])


def _parallel_examples(materializer, groups, num_workers):
    """Results in group order from a thread pool (see `_bounded_map`)."""

    def work(group):
        source_id, specs = group
        return materializer.examples(source_id, materializer.source.read(source_id), specs)

    return _bounded_map(work, groups, num_workers)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_to_json)


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, np.ndarray)):
        return list(value)
    raise TypeError(f"augmentation parameter {value!r} is not JSON-able")


class _Progress:
    """Logs progress (count, rate, peak RSS) every few seconds of a long loop."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done = what, total, 0
        self.start = self.last = time.monotonic()

    def step(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= _PROGRESS_EVERY_SECONDS or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            _LOG.info("augbal %s: %d/%d (%.0f/s, peak RSS %.0f MiB)", self.what, self.done,
                         self.total, rate, peak_rss_mib())


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB."""
    import resource  # pylint: disable=import-outside-toplevel
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
