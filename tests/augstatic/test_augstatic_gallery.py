"""The gallery entry point writes a valid labelled PNG grid."""

import math
import subprocess
import sys

import cv2
import numpy as np

import augstatic
from augstatic import gallery


def _write_photo(path):
    ys, xs = np.mgrid[0:90, 0:120]
    photo = np.stack([xs * 2, ys * 2, (xs + ys)], axis=-1).astype(np.uint8)
    cv2.imwrite(str(path), photo)


def test_gallery_module_writes_a_valid_png(tmp_path):
    source, out = tmp_path / "photo.jpg", tmp_path / "gallery.png"
    _write_photo(source)
    result = subprocess.run([sys.executable, "-m", "augstatic.gallery", "--image", str(source),
                             "--out", str(out), "--tile", "64"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = cv2.imread(str(out))
    assert grid is not None and grid.ndim == 3
    # Every registered transform + the original on a ceil(sqrt(n))-column grid of 64 px tiles
    # with labels (50 transforms + 1 = 51 tiles: 8 columns, 7 rows).
    tiles = len(augstatic.available()) + 1
    columns = math.ceil(math.sqrt(tiles))
    assert grid.shape[1] == columns * 64
    assert grid.shape[0] == math.ceil(tiles / columns) * (64 + 22)
    assert not list(tmp_path.glob("*.tmp"))


def test_gallery_on_a_real_photo_selected_names(intel_scene_mini, tmp_path):
    photo = sorted((intel_scene_mini / "seg_test" / "seg_test" / "glacier").glob("*.jpg"))[0]
    out = tmp_path / "g.png"
    assert gallery.main(["--image", str(photo), "--out", str(out), "--names", "to_gray",
                         "solarize", "--tile", "48"]) == 0
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * (48 + 22), 2 * 48, 3)


def test_gallery_bad_arguments_leave_no_file(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert gallery.main(["--image", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    (tmp_path / "notimage.jpg").write_text("hello")
    assert gallery.main(["--image", str(tmp_path / "notimage.jpg"), "--out", str(out)]) == 2
    source = tmp_path / "photo.jpg"
    _write_photo(source)
    assert gallery.main(["--image", str(source), "--out", str(tmp_path / "g.jpg")]) == 2
    assert gallery.main(["--image", str(source), "--out", str(out), "--names", "nope"]) == 2
    assert not out.exists()
