"""The DiT against the upstream fixtures: weights, plain and guided forwards, padding modes, LoRA gating."""

import json

import pytest
import torch
from parity import MODELS, load_case
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from stable_audio_3.dit import DiffusionTransformer
from stable_audio_3.loading import load_checkpoint_strict
from stable_audio_3.lora import LoraStack

PREFIX = "model.model."
CASES = {"small-music": "small_music", "medium": "medium"}
CFG_CALLS = {  # recorded output -> (apg_scale, with the negative condition)
    "output.v_cfg_apg1": (1.0, True),
    "output.v_cfg_apg0": (0.0, True),
    "output.v_cfg_apg0p5_no_negative": (0.5, False),
}


def diffusion_config(model: str) -> dict:
    return json.loads((MODELS / model / "model_config.json").read_text())["model"]["diffusion"]


def build(model: str) -> DiffusionTransformer:
    with torch.device("meta"):
        return DiffusionTransformer.from_config(diffusion_config(model))


@pytest.fixture(scope="module", params=list(CASES))
def model(request):
    """(name, DiT loaded strictly from the fixture checkpoint, plain forward case)."""
    dit = build(request.param)
    load_checkpoint_strict(dit, MODELS / request.param / "model.safetensors", prefix=PREFIX)
    return request.param, dit.eval().requires_grad_(False), load_case(f"dit_forward_{CASES[request.param]}")


def inputs(case):
    t = case.tensors
    names = ("x", "t", "cross_attn_cond", "global_cond", "local_add_cond")
    return tuple(t[f"input.{n}"] for n in names), t["input.padding_mask"]


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_keys_and_shapes_equal_the_checkpoint(name):
    with safe_open(str(MODELS / name / "model.safetensors"), framework="pt") as f:
        expected = {
            k[len(PREFIX) :]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(PREFIX)
        }
    actual = {k: tuple(v.shape) for k, v in build(name).state_dict().items()}
    assert actual == expected


def test_plain_forward_and_every_layer_match_upstream(model):
    _, dit, case = model
    args, padding_mask = inputs(case)
    layers = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, i=i: layers.__setitem__(i, out))
        for i, layer in enumerate(dit.transformer.layers)
    ]
    try:
        v = dit(*args, padding_mask=padding_mask, attention_padding="upstream_fallback")
    finally:
        for hook in hooks:
            hook.remove()
    case.assert_output("output.v", v)
    recorded = sorted(k for k in case.tensors if k.startswith("intermediate.dit_layer."))
    assert len(recorded) == len(layers)
    for i, layer_out in layers.items():
        expected = case.tensors[f"intermediate.dit_layer.model.transformer.layers.{i}"]
        # layer outputs are recorded without their own tolerance: use the case's output tolerance
        torch.testing.assert_close(layer_out, expected, rtol=0, atol=case.atol("output.v"))


@pytest.mark.parametrize("output", list(CFG_CALLS))
def test_guided_forward_matches_upstream(model, output):
    name, dit, plain = model
    case = load_case(f"dit_forward_cfg_{CASES[name]}")
    args, padding_mask = inputs(plain)
    apg_scale, negative = CFG_CALLS[output]
    neg = {}
    if negative:
        neg = dict(
            negative_cross_attn_cond=case.tensors["input.negative_cross_attn_cond"],
            negative_cross_attn_mask=case.tensors["input.negative_cross_attn_mask"],
        )
    v = dit(
        *args,
        padding_mask=padding_mask,
        cfg_scale=4.0,
        apg_scale=apg_scale,
        attention_padding="upstream_fallback",
        **neg,
    )
    assert v.dtype == torch.float32
    case.assert_output(output, v)


def _with_more_padding(args, padding_mask, extra: int):
    """The same valid frames followed by ``extra`` more padded frames of random content."""
    gen = torch.Generator().manual_seed(7)
    x, t, cross, global_cond, local = args

    def grow(a):
        return torch.cat([a, torch.randn(*a.shape[:-1], extra, generator=gen)], dim=-1)

    mask = torch.cat([padding_mask, torch.zeros(padding_mask.shape[0], extra, dtype=torch.bool)], dim=-1)
    return (grow(x), t, cross, global_cond, grow(local)), mask


@pytest.mark.parametrize("cfg_scale", [1.0, 4.0])
def test_exclude_mode_valid_frames_do_not_depend_on_padding_length(model, cfg_scale):
    _, dit, case = model
    args, padding_mask = inputs(case)
    longer_args, longer_mask = _with_more_padding(args, padding_mask, extra=25)
    valid = int(padding_mask.sum())
    atol = case.atol("output.v")
    outputs = {}
    for mode in ("exclude", "upstream_fallback"):
        short = dit(*args, padding_mask=padding_mask, cfg_scale=cfg_scale, attention_padding=mode)
        long = dit(*longer_args, padding_mask=longer_mask, cfg_scale=cfg_scale, attention_padding=mode)
        outputs[mode] = (short[..., :valid], long[..., :valid])
    torch.testing.assert_close(*outputs["exclude"], rtol=0, atol=atol)
    short, long = outputs["upstream_fallback"]
    assert (short - long).abs().max() > 100 * atol  # padded keys still take softmax weight upstream


def test_exclude_mode_leaving_a_common_padded_tail_out_equals_masking_it(model):
    """A padded tail shared by the batch is cut from the keys; a batch without one is masked."""
    _, dit, case = model
    args, padding_mask = inputs(case)
    (x, t, cross, global_cond, local), mask = _with_more_padding(args, padding_mask, extra=25)
    cut = dit(x, t, cross, global_cond, local, padding_mask=mask)
    pair = [torch.cat([a, a]) for a in (x, t, cross, global_cond, local)]
    masked = dit(*pair, padding_mask=torch.cat([mask, torch.ones_like(mask)]))
    torch.testing.assert_close(masked[:1], cut, rtol=0, atol=case.atol("output.v"))


def test_padding_modes_agree_without_padding(model):
    _, dit, case = model
    args, _ = inputs(case)
    exclude = dit(*args, attention_padding="exclude")
    assert torch.equal(exclude, dit(*args, attention_padding="upstream_fallback"))
    all_valid = torch.ones(args[0].shape[0], args[0].shape[-1], dtype=torch.bool)
    torch.testing.assert_close(
        dit(*args, padding_mask=all_valid, attention_padding="exclude"),
        dit(*args, padding_mask=all_valid, attention_padding="upstream_fallback"),
        rtol=0,
        atol=case.atol("output.v"),
    )
    masked = dit(*args, padding_mask=all_valid, attention_padding="exclude")
    torch.testing.assert_close(masked, exclude, rtol=0, atol=case.atol("output.v"))


def test_guidance_off_or_neutral_gives_the_plain_velocity(model):
    name, dit, case = model
    args, padding_mask = inputs(case)
    negative = load_case(f"dit_forward_cfg_{CASES[name]}").tensors["input.negative_cross_attn_cond"]
    plain = dit(*args, padding_mask=padding_mask)
    # cfg_scale 1, or t outside cfg_interval: no guidance at all, bit for bit
    unguided = dit(*args, padding_mask=padding_mask, cfg_scale=1.0, negative_cross_attn_cond=negative)
    assert torch.equal(unguided, plain)
    assert torch.equal(dit(*args, padding_mask=padding_mask, cfg_scale=4.0, cfg_interval=(0.0, 0.5)), plain)
    # guided batch with the positive condition as the negative one: the guidance term vanishes
    same = dit(*args, padding_mask=padding_mask, cfg_scale=4.0, negative_cross_attn_cond=args[2])
    torch.testing.assert_close(same, plain, rtol=0, atol=case.atol("output.v"))


def test_unknown_arguments_raise(model):
    _, dit, case = model
    args, padding_mask = inputs(case)
    with pytest.raises(TypeError, match="cross_attn_cond_mask"):
        dit(*args, cross_attn_cond_mask=padding_mask)
    with pytest.raises(ValueError, match="attention_padding"):
        dit(*args, attention_padding="flash")


def test_lora_interval_and_layer_filter_switch_adapters(model, tmp_path):
    _, dit, case = model
    args, padding_mask = inputs(case)
    base = dit(*args, padding_mask=padding_mask)
    gen = torch.Generator().manual_seed(3)
    layers = {}
    for path in ("transformer.layers.0.self_attn.to_qkv", "transformer.layers.1.ff.ff.2"):
        out_dim, in_dim = dit.get_submodule(path).weight.shape
        layers[f"model.{path}"] = {
            "lora_A": torch.randn(2, in_dim, generator=gen),
            "lora_B": torch.randn(out_dim, 2, generator=gen),
        }
    tensors = {f"{m}.parametrizations.weight.0.{k}": v for m, p in layers.items() for k, v in p.items()}
    file = tmp_path / "adapter.safetensors"
    save_file(tensors, str(file), metadata={"lora_config": json.dumps({"rank": 2, "alpha": 2.0})})
    holder = nn.Module()
    holder.model = dit
    stack = LoraStack([holder])
    stack.load([file])
    try:
        adapted = dit(*args, padding_mask=padding_mask)
        assert not torch.allclose(adapted, base)
        assert torch.equal(dit(*args, padding_mask=padding_mask, lora_interval=(0.0, 0.5)), base)
        assert torch.equal(dit(*args, padding_mask=padding_mask, lora_layer_filter="Layers.[1-0]."), base)
        one_layer = dit(*args, padding_mask=padding_mask, lora_layer_filter="layers.0.")
        assert not torch.allclose(one_layer, base) and not torch.allclose(one_layer, adapted)
        assert torch.equal(dit(*args, padding_mask=padding_mask), adapted)  # the next call re-enables all
    finally:
        stack.unload()


def _adapter_file(dit, path, seed):
    """A LoRA file adapting two layers of ``dit`` with random weights."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in ("transformer.layers.0.self_attn.to_qkv", "transformer.layers.1.ff.ff.2"):
        out_dim, in_dim = dit.get_submodule(layer).weight.shape
        tensors[f"model.{layer}.parametrizations.weight.0.lora_A"] = torch.randn(2, in_dim, generator=gen)
        tensors[f"model.{layer}.parametrizations.weight.0.lora_B"] = torch.randn(out_dim, 2, generator=gen)
    save_file(tensors, str(path), metadata={"lora_config": json.dumps({"rank": 2, "alpha": 2.0})})
    return path


def test_lora_configs_give_each_file_its_own_interval_and_layer_filter(model, tmp_path):
    """Upstream's per-file form: a file outside its interval (or filtered) is as if it were not loaded."""
    _, dit, case = model
    args, padding_mask = inputs(case)
    sigma = float(args[1][0])
    files = [
        _adapter_file(dit, tmp_path / f"{name}.safetensors", seed) for name, seed in [("a", 1), ("b", 2)]
    ]
    holder = nn.Module()
    holder.model = dit
    only_a, both = LoraStack([holder]), LoraStack([holder])
    only_a.load(files[:1])
    try:
        reference = dit(*args, padding_mask=padding_mask)
    finally:
        only_a.unload()
    both.load(files)
    try:
        assert not torch.equal(dit(*args, padding_mask=padding_mask), reference)
        outside = [{"lora_index": 1, "interval": (min(sigma + 0.01, 1.0), 1.0)}]
        assert torch.equal(dit(*args, padding_mask=padding_mask, lora_configs=outside), reference)
        filtered = [{"lora_index": 1, "layer_filter": "layers.[0-1]."}]
        assert torch.equal(dit(*args, padding_mask=padding_mask, lora_configs=filtered), reference)
        inside = [{"lora_index": 0, "interval": (0.0, 1.0)}, {"lora_index": 1, "interval": (0.0, 1.0)}]
        assert torch.equal(
            dit(*args, padding_mask=padding_mask, lora_configs=inside), dit(*args, padding_mask=padding_mask)
        )
        with pytest.raises(ValueError, match="lora_configs names LoRA index 2, but the loaded files have"):
            dit(*args, padding_mask=padding_mask, lora_configs=[{"lora_index": 2}])
        with pytest.raises(ValueError, match="lora_configs must be a list of dicts"):
            dit(*args, padding_mask=padding_mask, lora_configs=[{"lora_index": 0, "interval": 0.5}])
    finally:
        both.unload()


@pytest.mark.parametrize(
    "key, value",
    [("global_cond_type", "prepend"), ("timestep_features_logsnr", True), ("mystery_option", 1)],
)
def test_unsupported_configs_are_refused(key, value):
    diffusion = diffusion_config("small-music")
    diffusion["config"][key] = value
    with pytest.raises(ValueError, match=key):
        DiffusionTransformer.from_config(diffusion)


@pytest.mark.parametrize("cfg_scale", [1.0, 3.0])
def test_conditions_cache_gives_the_same_velocity_and_is_reused(model, cfg_scale):
    """The per-generation cache of condition-only work changes nothing but the amount of work."""
    _, dit, case = model
    (x, t, *conds), padding_mask = inputs(case)
    kwargs = dict(padding_mask=padding_mask, cfg_scale=cfg_scale)
    cache: dict = {}
    assert torch.equal(dit(x, t, *conds, conditions_cache=cache, **kwargs), dit(x, t, *conds, **kwargs))
    assert len(cache) == 1
    calls = []
    hook = dit.to_cond_embed.register_forward_hook(lambda *_: calls.append(1))
    try:
        later = dit(x, t * 0.5, *conds, conditions_cache=cache, **kwargs)
    finally:
        hook.remove()
    assert not calls and torch.equal(later, dit(x, t * 0.5, *conds, **kwargs))


def test_fast_linear_matches_torch_and_keeps_autograd():
    from stable_audio_3.layers import Linear

    torch.manual_seed(0)
    layer = Linear(64, 96)
    x = torch.randn(3, 7, 64)
    assert set(layer.state_dict()) == {"weight", "bias"}
    with torch.inference_mode():
        fast = layer(x)
    torch.testing.assert_close(fast, nn.functional.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    out = layer(x.requires_grad_())  # training-style call: the standard path, gradients flow
    out.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
