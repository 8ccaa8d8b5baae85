"""Every prompt configuration on known classes: content, counts, determinism, save/load."""
import numpy as np
import pytest

from synscale.data import prompts as P
from synscale.data.world import text as T

CLASSES = ["dress", "sandal"]


@pytest.fixture(scope="module")
def caps():
    return [["a red dress on a hanger", "woman in a long dress"], ["sandals on the beach"]]


def make(config, n=12, seed=0, caps=None):
    return P.make_prompts(config, CLASSES, n, seed, captions=caps)


def test_classnames_and_labels_in_class_blocks():
    ps = make("classnames", n=3)
    assert ps.prompts == ("dress",) * 3 + ("sandal",) * 3
    assert ps.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_description_is_the_wordnet_gloss():
    ps = make("classnames_description", n=2)
    assert ps.for_class(0)[0] == "dress, " + T.gloss("dress.n.01")
    assert ps.for_class(1)[0].startswith("sandal, a shoe consisting of a sole fastened by straps")


def test_hypernyms_lists_lemmas_and_hypernyms_without_repeats():
    p = make("classnames_hypernyms", n=1).for_class(1)[0]
    words = p.split(", ")
    assert words[0] == "sandal" and "shoe" in words and len(words) == len({w.lower() for w in words})


@pytest.mark.parametrize("n_templates", [7, 80])
def test_clip_templates_draw_from_the_right_set(n_templates):
    ps = make(f"clip_templates_{n_templates}", n=2000)
    filled = set(T.fill_templates(n_templates, "dress"))
    got = set(ps.for_class(0))
    assert got <= filled and len(got) == len(filled)  # 2000 draws cover all 7 / 80 templates


def test_places_configs_append_a_places365_scene():
    places = set(T.places365())
    for cfg in ("classnames_description_places", "classnames_hypernyms_places"):
        for p in make(cfg, n=5).for_class(0):
            head, place = p.rsplit(" inside ", 1)
            assert place in places and head.startswith("dress, ")


def test_in_captions_prefix_class_name_to_a_caption_of_that_class(caps):
    ps = make("in_captions", n=20, caps=caps)
    assert set(ps.for_class(0)) == {"dress, " + c for c in caps[0]}
    assert set(ps.for_class(1)) == {"sandal, sandals on the beach"}
    with pytest.raises(ValueError, match="in_captions needs captions"):
        make("in_captions")


def test_word2sen_offline_sentences_contain_the_class_word():
    ps = make("word2sen", n=30)
    assert all("dress" in p and p.endswith(".") for p in ps.for_class(0))
    assert len(set(ps.for_class(0))) > 10


@pytest.mark.parametrize("config", P.CONFIGS)
def test_every_config_is_deterministic_given_seed_and_roundtrips_through_a_file(config, caps, tmp_path):
    a, b, c = make(config, seed=3, caps=caps), make(config, seed=3, caps=caps), make(config, seed=4, caps=caps)
    assert a.prompts == b.prompts and np.array_equal(a.labels, b.labels)
    if config in ("word2sen", "in_captions") or config.startswith("clip") or config.endswith("places"):
        assert a.prompts != c.prompts  # per-image random draws depend on the seed
    back = P.load(a.save(tmp_path / "p.tsv"), CLASSES)
    assert back.prompts == a.prompts and np.array_equal(back.labels, a.labels) and back.config == config
    assert len(a) == 2 * 12 and P.PAPER_NAMES[config]


def test_unknown_config_and_wrong_class_file_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown prompt config 'names'; known: classnames"):
        P.make_prompts("names", CLASSES, 2)
    path = make("classnames", n=1).save(tmp_path / "p.tsv")
    with pytest.raises(ValueError, match="class names do not match"):
        P.load(path, ["coat", "bag"])
    with pytest.raises(ValueError, match="class names do not match"):
        P.load(path, [])  # labels beyond the class list


def test_captions_without_a_class_roundtrip(tmp_path):
    """Pool captions (SynthCLIP, CLIP mixing) carry label -1 and no class list: they save and load as they are."""
    ps = P.PromptSet("synthclip", (), np.array([-1, -1]), ("a dog on a beach", "tabs\tand, commas"))
    back = P.load(ps.save(tmp_path / "p.tsv"), ())
    assert back.prompts == ps.prompts and back.labels.tolist() == [-1, -1] and back.classes == ()


def test_imagenet_classes_get_their_synsets():
    names = [n for _, n in T.imagenet_classes()]
    ps = P.make_prompts("classnames_description", names, 1)
    assert ps.prompts[0].startswith("tench, freshwater dace-like game fish")
    sub = P.make_prompts("classnames_hypernyms", ["goldfish", "tench"], 1)  # a subset of ImageNet's classes
    assert sub.prompts[1].startswith("tench, Tinca tinca") and "cyprinid" in sub.prompts[1]


def test_in_captions_use_each_caption_once_before_any_repeats():
    """The paper prompts once per real image: a set no larger than a class's captions has no repeated caption, and
    a larger one uses each caption equally often (±1)."""
    many = [[f"dress number {i}" for i in range(50)], [f"sandal number {i}" for i in range(7)]]
    ps = P.make_prompts("in_captions", CLASSES, 40, 0, captions=many)
    assert len(set(ps.for_class(0))) == 40
    counts = np.unique(ps.for_class(1), return_counts=True)[1]
    assert len(counts) == 7 and counts.max() - counts.min() <= 1
