"""The shipped mini world: every artifact verifies its checksums and loads through its library class."""
import numpy as np
import pytest
import torch

from synscale.data import world as W
from synscale.methods import models, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    return W.load()


def test_manifest_lists_every_component(world):
    from synscale.orchestration.build import COMPONENTS

    assert set(W.read_manifest(world.root)["components"]) == set(COMPONENTS)


@pytest.mark.parametrize("family, cls", [("sd", "StableDiffusionPipeline"), ("if", "IFPipeline"),
                                         ("muse", "AmusedPipeline"), ("fm", "StableDiffusion3Pipeline")])
def test_text_to_image_pipelines_load_and_generate(family, cls):
    from synscale.methods.generate import generate_images

    pipe = models.t2i(family)
    assert type(pipe).__name__ == cls
    imgs, stats = generate_images(pipe, ["a photo of a coat", "a dark sandal"], [0, 1], guidance_scale=3.0, steps=2)
    assert imgs.shape == (2, 32, 32) and imgs.dtype == np.uint8 and stats["images"] == 2


@pytest.mark.parametrize("family", ["sd", "if", "muse", "fm"])
def test_shipped_tokenizers_encode_like_open_clip(family):
    """A pipeline saved without its vocabulary reloads a tokenizer that maps every word to one id."""
    import open_clip

    pipe = models.t2i(family)
    text = "a photo of a dark ankle boot"
    want = [i for i in open_clip.get_tokenizer("ViT-B-32")([text])[0].tolist() if i]
    assert pipe.tokenizer(text).input_ids == want


@pytest.mark.parametrize("family", ["sd", "if"])
def test_training_conditions_on_what_the_pipeline_encodes(world, family):
    """The denoisers train on the text embeddings their pipelines give at inference: IFPipeline masks the padding
    tokens (whose embeddings then differ by up to 3 in a 0.75-norm space), StableDiffusionPipeline does not."""
    from synscale.data.world.diffusion import TEXT_MASK, tokenize

    text_mask = TEXT_MASK[family]
    assert W.read_manifest(world.root)["components"][family]["unet"].get("text_mask", False) == text_mask
    pipe = models.t2i(family)
    prompts = ["a photo of a coat", ""]
    ids, mask = tokenize(pipe.tokenizer, prompts)
    with torch.no_grad():
        trained = pipe.text_encoder(ids, attention_mask=mask if text_mask else None)[0].float()
        kw = {"clean_caption": False} if family == "if" else {"device": "cpu", "num_images_per_prompt": 1,
                                                              "do_classifier_free_guidance": False}
        served = pipe.encode_prompt(prompts, **kw)[0].float()
    torch.testing.assert_close(served, trained)


def test_flow_model_samples_as_it_was_trained(world):
    """The FM analog integrates the rectified flow it learned (FlowMatchEuler, the trained shift), its tokenizers keep
    the trained context length, and its registry entry's call gives T5's zero block the trained length."""
    from synscale.data import generators
    from synscale.data.world import flow

    pipe = models.t2i("fm")
    cfg = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert {k: cfg[k] for k in flow.SCHEDULER} == flow.SCHEDULER
    assert pipe.tokenizer.model_max_length == pipe.tokenizer_2.model_max_length == flow.TEXT_TOKENS
    assert pipe.synscale_call == generators.get("fm").call == {"max_sequence_length": flow.T5_TOKENS}
    recipe = W.read_manifest(world.root)["components"]["fm"]["transformer"]
    assert recipe["steps"] > 0 and "rectified flow" in recipe["objective"]


def test_pixel_denoiser_samples_with_its_training_schedule(world):
    """IF's UNet predicts v on a zero-terminal-SNR schedule: the pipeline's scheduler must say so too."""
    from synscale.data.world.diffusion import IF_SCHEDULER

    cfg = models.t2i("if").scheduler.config
    assert {k: cfg[k] for k in IF_SCHEDULER} == IF_SCHEDULER
    assert W.read_manifest(world.root)["components"]["if"]["unet"]["prediction_type"] == cfg.prediction_type
    assert cfg.prediction_type == "v_prediction" and cfg.rescale_betas_zero_snr and cfg.timestep_spacing == "trailing"


def test_oracle_is_a_timm_model_with_ten_classes(world):
    m = models.oracle()
    x, _ = world.split("val", 8)
    logits, feats = train.predict(m, x)
    assert logits.shape == (8, 10) and feats.ndim == 2
    assert type(m).__module__.startswith("timm.")


def test_upstream_clip_loads_through_open_clip(world):
    from synscale.methods import clip as C

    model, _, tok = C.create(pretrained=str(world.path("clip")))
    x, _ = world.split("val", 4)
    with torch.no_grad():
        img = model.encode_image(C.to_tensor(x, model))
        txt = model.encode_text(tok(["a photo of a coat"]))
    assert img.shape[0] == 4 and img.shape[1] == txt.shape[1]


def test_ood_a_is_what_the_oracle_gets_wrong(world):
    x, y = world.split("a")
    assert 0 < len(y) < len(world.indices["a_candidates"])
    assert (train.predict(models.oracle(), x)[0].argmax(1) != y).all()


def test_unknown_paper_model_is_one_clear_line():
    with pytest.raises(models.MissingModelError) as e:
        models.t2i("sd", "nobody/no-such-model")
    msg = str(e.value)
    assert "\n" not in msg and "nobody/no-such-model" in msg and "Hugging Face cache" in msg
    with pytest.raises(ValueError, match="unknown text-to-image generator 'dalle'"):
        models.t2i("dalle")
