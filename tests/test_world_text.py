"""synscale.data.world.text: offline WordNet, ImageNet metadata, CLIP templates, Places365."""
import pytest

from synscale.data.world import classes, text


def test_gloss_hypernyms_lemmas():
    assert text.gloss("dress.n.01").startswith("a one-piece garment for a woman")
    assert text.hypernyms("sandal.n.01") == ["shoe"]
    assert text.hypernyms("sandal.n.01", depth=2)[:2] == ["shoe", "footwear"]
    assert "sneaker" in text.lemmas("gym_shoe.n.01")
    assert "gym shoe" in text.lemmas("gym_shoe.n.01")  # readable: underscores -> spaces
    with pytest.raises(ValueError):
        text.hypernyms("sandal.n.01", depth=0)


def test_lexnames_match_wordnet():
    wn = text.wordnet()
    assert len(text.LEXNAMES) == 45
    assert wn.synset("entity.n.01").lexname() == "noun.Tops"
    assert wn.synset("sandal.n.01").lexname() == "noun.artifact"
    assert wn.synset("run.v.01").lexname() == "verb.motion"


def test_every_class_synset_resolves():
    mapping = text.class_synsets()
    assert list(mapping) == classes.NAMES and list(mapping.values()) == classes.SYNSETS
    for name in classes.SYNSETS:
        assert text.gloss(name).strip()
        assert text.hypernyms(name)


def test_imagenet_classes():
    c = text.imagenet_classes()
    assert len(c) == 1000 and len({w for w, _ in c}) == 1000
    assert c[0] == ("n01440764", "tench")
    assert text.imagenet_synset("n01440764").name() == "tench.n.01"
    assert text.imagenet_synset(c[-1][0]).pos() == "n"
    with pytest.raises(ValueError):
        text.imagenet_synset("tench")


@pytest.mark.parametrize("n", [80, 7])
def test_clip_templates(n):
    ts = text.clip_templates(n)
    assert len(ts) == n and len(set(ts)) == n
    assert all(t.count("{}") == 1 for t in ts)
    filled = text.fill_templates(n, "ankle boot")
    assert filled == [t.format("ankle boot") for t in ts]
    assert all("ankle boot" in f for f in filled)


def test_clip_templates_bad_n():
    with pytest.raises(ValueError, match="80") as e:
        text.clip_templates(10)
    assert "7" in str(e.value)


def test_places365():
    p = text.places365()
    assert len(p) == 365 and len(set(p)) == 365
    assert p[0] == "airfield" and "bakery shop" in p and "airplane cabin" in p
    assert all("/" not in x and "_" not in x and x == x.strip() for x in p)


def test_missing_wordnet_one_line_error(monkeypatch, tmp_path):
    missing = tmp_path / "no-wordnet"
    monkeypatch.setenv("SYNSCALE_WORDNET_DIR", str(missing))
    text.wordnet.cache_clear()
    try:
        with pytest.raises(FileNotFoundError) as e:
            text.wordnet()
        msg = str(e.value)
        assert "\n" not in msg
        assert str(missing) in msg and "wordnet-base" in msg and "wordnet-sense-index" in msg
    finally:
        text.wordnet.cache_clear()
