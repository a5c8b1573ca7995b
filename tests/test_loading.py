from __future__ import annotations

import json
import os

import pytest
import torch

from cinescene import architecture, loading, placement
from cinescene.errors import InputError, ModelNotFoundError
from cinescene.settings import HUB_480P, HUB_720P, ModelSpec


def test_tiny_uses_the_real_classes_with_image_cross_attention(tiny_model):
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPVisionModel, UMT5EncoderModel

    pipe = tiny_model.pipe
    assert isinstance(pipe, WanImageToVideoPipeline)
    assert isinstance(pipe.transformer, WanTransformer3DModel)
    assert isinstance(pipe.vae, AutoencoderKLWan)
    assert isinstance(pipe.text_encoder, UMT5EncoderModel)
    assert isinstance(pipe.image_encoder, CLIPVisionModel)
    cfg = pipe.transformer.config
    assert cfg.image_dim == pipe.image_encoder.config.hidden_size
    assert cfg.added_kv_proj_dim == cfg.num_attention_heads * cfg.attention_head_dim
    assert cfg.in_channels == 2 * pipe.vae.config.z_dim + pipe.vae_scale_factor_temporal
    assert pipe.transformer.blocks[0].attn2.add_k_proj is not None
    assert tiny_model.is_tiny and tiny_model.device.type == "cpu"
    assert tiny_model.dtype == torch.float32 and pipe.vae.dtype == torch.float32


def test_tiny_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = loading.build_tiny_pipeline(seed=0).transformer.state_dict()
    b = loading.build_tiny_pipeline(seed=0).transformer.state_dict()
    c = loading.build_tiny_pipeline(seed=1).transformer.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_get_model_caches_one_pipeline():
    first = loading.get_model(ModelSpec(model="tiny"))
    assert loading.get_model(ModelSpec(model="tiny")) is first
    other = loading.get_model(ModelSpec(model="tiny", seed=1))  # another spec replaces it: one slot only
    assert other is not first and loading.get_model(ModelSpec(model="tiny", seed=1)) is other


def test_auto_model_is_toy_without_cuda(monkeypatch):
    assert not torch.cuda.is_available()
    assert loading.auto_model() == "toy"
    assert placement.resolve_device("auto").type == "cpu"
    monkeypatch.setattr(placement, "cuda_available", lambda: True)
    assert loading.auto_model() == "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"


def test_defaults_follow_the_model():
    assert architecture.defaults_for(HUB_480P).preset == "480P"
    assert architecture.defaults_for(HUB_720P).preset == "720P"
    assert architecture.defaults_for(HUB_480P).steps == 40 and architecture.defaults_for(HUB_480P).frames == 81
    assert architecture.defaults_for("tiny").preset == "preview"


def test_local_folder_round_trip(tmp_path, still, small_settings):
    from cinescene import media, sampler

    folder = tmp_path / "wan-tiny"
    tiny = loading.load_model(ModelSpec(model="tiny"))  # a private copy: the shared one may carry adapters
    tiny.pipe.save_pretrained(folder)
    local = loading.load_model(ModelSpec(model=str(folder)))
    assert local.source == "local" and local.model_id == str(folder.resolve())
    image = media.load_image(still)
    a = sampler.sample(tiny, image, small_settings).frames
    b = sampler.sample(local, image, small_settings).frames
    assert (a == b).all()


def test_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(InputError, match="model_index.json"):
        loading.load_model(ModelSpec(model=str(tmp_path)))


def test_folder_with_another_pipeline_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(InputError, match="FluxPipeline"):
        loading.load_model(ModelSpec(model=str(tmp_path)))


def test_nonsense_model_name_is_refused():
    with pytest.raises(InputError, match="neither an existing folder nor a hub id"):
        loading.load_model(ModelSpec(model="no such model!"))


def test_unknown_memory_mode_and_device():
    with pytest.raises(InputError, match="unknown memory mode"):
        loading.load_model(ModelSpec(model="tiny", memory="lots"))
    with pytest.raises(InputError, match="no CUDA device"):
        placement.resolve_device("cuda")


def test_offline_hub_error_names_id_cache_and_tiny(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        loading.load_model(ModelSpec(model=HUB_720P))
    message = str(info.value)
    assert HUB_720P in message and "cache" in message and "--model tiny" in message
    assert "\n" not in message


@pytest.mark.allow_blocked_network
def test_unreachable_hub_error(monkeypatch, tmp_path):
    """With the hub switched on but the network blocked, the answer is the same clear error."""
    import netguard

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # empty cache
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    before = len(netguard.attempts)
    with pytest.raises(ModelNotFoundError, match="unreachable"):
        loading.load_model(ModelSpec(model=HUB_480P))
    assert len(netguard.attempts) > before, "the hub was not even tried"
    assert os.environ.get("HF_HUB_OFFLINE") is None


def test_vae_tiling_is_switched_on(still, small_settings):
    from cinescene import media, sampler

    model = loading.load_model(ModelSpec(model="tiny", vae_tiling=True))
    assert model.pipe.vae.use_tiling
    assert sampler.sample(model, media.load_image(still), small_settings).frames.shape == (5, 32, 48, 3)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    """The tiny pipeline saved in diffusers layout, copied into folders of several names and provenances."""
    folder = tmp_path_factory.mktemp("saved") / "wan"
    loading.load_model(ModelSpec(model="tiny")).pipe.save_pretrained(folder)
    return folder


def copy_of(saved, target):
    import shutil

    shutil.copytree(saved, target)
    return target


def test_the_preset_comes_from_the_hub_cache_a_folder_sits_in(saved_tiny, tmp_path, still):
    from cinescene import media, sampler

    # Where `hf download` (without --local-dir) puts the 720P repo; the folder itself is named by a revision.
    snapshot = copy_of(saved_tiny, tmp_path / "hub" / "models--Wan-AI--Wan2.1-I2V-14B-720P-Diffusers" / "snapshots"
                       / "8823af45fcc58a8aa999a54b04be9abc7d2aac98")
    model = loading.load_model(ModelSpec(model=str(snapshot)))
    assert model.preset == architecture.PresetChoice("720P", "hub cache (Wan-AI/Wan2.1-I2V-14B-720P-Diffusers)")
    assert model.defaults.preset == "720P" and not model.notes
    result = sampler.sample_to_file(model, media.load_image(still), model.defaults.settings(
        "a lighthouse", steps=1, frames=1, height=32, width=48), tmp_path / "shot.mp4")
    assert result.record["model"]["preset"] == "720P" and result.record["model"]["preset_source"].startswith("hub")
    assert result.record["settings"]["shift"] == 5.0  # the 720P shift, not 480P's 3.0


def test_the_preset_comes_from_a_saved_components_origin(saved_tiny, tmp_path):
    # Older transformers versions wrote the source a component was loaded from into its saved config.
    folder = copy_of(saved_tiny, tmp_path / "wan-i2v")
    config = folder / "image_encoder" / "config.json"
    data = json.loads(config.read_text())
    data["_name_or_path"] = "/root/.cache/huggingface/hub/models--Wan-AI--Wan2.1-I2V-14B-720P-Diffusers/snapshots/x"
    config.write_text(json.dumps(data))
    choice = architecture.model_preset(str(folder))
    assert choice.name == "720P" and choice.source.startswith("image_encoder/config.json (_name_or_path")


def test_a_folder_that_does_not_say_gets_480p_with_a_note_and_preset_settles_it(saved_tiny, tmp_path):
    folder = copy_of(saved_tiny, tmp_path / "wan-i2v-14b")
    model = loading.load_model(ModelSpec(model=str(folder)))
    assert model.preset.name == "480P" and model.preset.source.startswith("default")
    assert any("--preset 720P" in note for note in model.notes)
    told = loading.load_model(ModelSpec(model=str(folder), preset="720P"))
    assert told.preset == architecture.PresetChoice("720P", "--preset") and told.defaults.preset == "720P"
    assert told.describe()["preset_source"] == "--preset" and not told.notes
    named = copy_of(saved_tiny, tmp_path / "Wan2.1-I2V-14B-720P")
    assert architecture.model_preset(str(named)) == architecture.PresetChoice("720P", "folder name")
    assert architecture.model_preset(HUB_720P) == architecture.PresetChoice("720P", "hub id")
    assert architecture.model_preset(HUB_480P, "720P").source == "--preset"


def test_preset_is_one_flag_for_the_model_and_the_shot(tmp_path):
    from cinescene.cli.common import Parser, add_model_args, add_sample_args, model_spec, sample_settings

    parser = Parser()
    add_model_args(parser)
    add_sample_args(parser)
    args = parser.parse_args(["--model", "tiny", "--preset", "720P", "--image", "x.png", "--prompt", "p"])
    spec = model_spec(args)
    assert spec.preset == "720P" and sample_settings(args, spec).preset == "720P"
    default = parser.parse_args(["--model", HUB_720P, "--image", "x.png", "--prompt", "p"])
    assert model_spec(default).preset is None and sample_settings(default, model_spec(default)).preset == "720P"


def test_a_mistyped_model_does_not_cost_the_loaded_one(tmp_path):
    loaded = loading.get_model(ModelSpec(model="tiny"))
    for bad in (str(tmp_path / "no-such-folder"), "not a model id"):
        with pytest.raises(InputError, match="neither an existing folder nor a hub id"):
            loading.get_model(ModelSpec(model=bad))
    (tmp_path / "half").mkdir()
    with pytest.raises(InputError, match="no model_index.json"):
        loading.get_model(ModelSpec(model=str(tmp_path / "half")))
    assert loading.get_model(ModelSpec(model="tiny")) is loaded  # still the one in memory, not reloaded


def test_tiny_wan22_has_two_experts_and_tiny_ti2v_the_wan22_vae():
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel

    from cinescene.settings import TINY_TI2V, TINY_WAN22

    wan22 = loading.load_model(ModelSpec(model=TINY_WAN22))
    pipe = wan22.pipe
    assert isinstance(pipe, WanImageToVideoPipeline) and isinstance(pipe.transformer_2, WanTransformer3DModel)
    assert pipe.config.boundary_ratio == architecture.TINY_WAN22_BOUNDARY and pipe.image_encoder is None
    assert pipe.transformer.config.image_dim is None and pipe.transformer.config.in_channels == 36
    assert wan22.two_experts and wan22.describe()["experts"] == ["high_noise", "low_noise"]
    a, b = pipe.transformer.state_dict(), pipe.transformer_2.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two experts, not one twice
    ti2v = loading.load_model(ModelSpec(model=TINY_TI2V))
    assert ti2v.pipe.config.expand_timesteps and ti2v.pipe.vae.config.z_dim == 48 and ti2v.pipe.transformer_2 is None
    assert ti2v.size_multiple == 32 and ti2v.family == architecture.WAN22_TI2V
    assert ti2v.defaults.shift == 5.0 and ti2v.defaults.fps == 24


def test_a_ti2v_folder_in_the_hub_repositorys_layout_loads(tmp_path, still):
    """Wan-AI/Wan2.2-TI2V-5B-Diffusers names WanPipeline and no image encoder; it loads as image-to-video."""
    from cinescene import media, sampler
    from cinescene.settings import TINY_TI2V, SampleSettings

    tiny = loading.load_model(ModelSpec(model=TINY_TI2V))
    folder = tmp_path / "Wan2.2-TI2V-5B"
    tiny.pipe.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "WanPipeline"
    for gone in ("image_encoder", "image_processor"):
        index.pop(gone, None)
    (folder / "model_index.json").write_text(json.dumps(index))
    local = loading.load_model(ModelSpec(model=str(folder)))
    assert local.family == architecture.WAN22_TI2V and local.pipe.config.expand_timesteps
    assert local.preset.name == "704P" and local.defaults.steps == 50  # TI2V-5B's official defaults
    shot = SampleSettings(prompt="a lighthouse", steps=2, frames=5, height=32, width=64, preset="preview")
    image = media.load_image(still)
    assert (sampler.sample(tiny, image, shot).frames == sampler.sample(local, image, shot).frames).all()


def test_a_two_expert_folder_round_trips(tmp_path, still):
    from cinescene import media, sampler
    from cinescene.settings import TINY_WAN22, SampleSettings

    tiny = loading.load_model(ModelSpec(model=TINY_WAN22))
    tiny.pipe.save_pretrained(tmp_path / "a14b")
    local = loading.load_model(ModelSpec(model=str(tmp_path / "a14b")))
    assert local.two_experts and local.family.boundary_ratio == 0.9 and local.source == "local"
    shot = SampleSettings(prompt="a lighthouse", steps=3, frames=5, height=32, width=48, preset="preview")
    image = media.load_image(still)
    assert (sampler.sample(tiny, image, shot).frames == sampler.sample(local, image, shot).frames).all()
    with pytest.raises(InputError, match="two experts"):
        loading.load_model(ModelSpec(model=str(tmp_path / "a14b"), transformer=str(tmp_path / "a14b" / "transformer")))


def test_wan22_text_to_video_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline", "boundary_ratio": 0.875,
                                                           "transformer_2": ["diffusers", "WanTransformer3DModel"]}))
    with pytest.raises(InputError, match="holds a WanPipeline"):
        loading.load_model(ModelSpec(model=str(tmp_path)))
