"""SynthCLIP pipeline pieces: MetaCLIP matching, balanced sampling, the stand-in captioner, few-shot and retrieval."""
import numpy as np
import pytest
import torch

from synscale.methods import evaluate, llm
from synscale.studies import synthclip as S


def test_matching_is_metaclips_spaced_substring_rule():
    entries = ["cat", "black cat", "at", "New York", "dog", "sat."]
    texts = ["A black cat sat.", "category of dogs", "Seen in New York, twice", "new york", "cat,dog"]
    got = S.match_entries(texts, entries)

    def metaclip(text):  # MetaCLIP's substr_matching, verbatim logic
        sp = S.spacing(text)
        return sorted(i for i, e in enumerate(entries) if f" {e} " in sp)

    assert got == [metaclip(t) for t in texts]
    assert got[0] == [0, 1] and got[1] == [] and got[2] == [3] and got[3] == [] and got[4] == [0, 4]


def _toy_corpus(seed=0):
    """Entry 0 in 900 texts, entry 1 in 90, entry 2 in 10; 200 texts match nothing."""
    entries = ["head", "body", "tail"]
    texts = ["a head"] * 900 + ["a body"] * 90 + ["a tail"] * 10 + ["nothing here"] * 200
    return entries, texts


def test_balanced_sampling_keeps_min_count_t_over_count_and_never_unmatched():
    entries, texts = _toy_corpus()
    m = S.match_entries(texts, entries)
    counts = S.entry_counts(m, len(entries))
    assert counts.tolist() == [900, 90, 10]
    t = 50.0
    assert S.balance_probs(counts, t).tolist() == pytest.approx([50 / 900, 50 / 90, 1.0])
    rates = np.zeros(3)
    reps = 40
    for seed in range(reps):
        keep, t_used = S.balanced_sample(m, counts, t=t, seed=seed)
        assert t_used == t
        assert not np.any(keep >= 1000)  # unmatched texts are never kept
        for e, (lo, hi) in enumerate(((0, 900), (900, 990), (990, 1000))):
            rates[e] += ((keep >= lo) & (keep < hi)).sum() / (hi - lo)
    rates /= reps
    expected = np.minimum(counts, t) / counts
    assert rates == pytest.approx(expected, abs=0.02)
    a, _ = S.balanced_sample(m, counts, t=t, seed=7)
    b, _ = S.balanced_sample(m, counts, t=t, seed=7)
    c, _ = S.balanced_sample(m, counts, t=t, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_keep_probability_combines_entries_and_t_hits_a_target():
    m = [[0, 1], [0], [], [1]]
    counts = np.array([4, 2])
    p = S.keep_probs(m, counts, t=1.0)  # p_0 = 1/4, p_1 = 1/2
    assert p.tolist() == pytest.approx([1 - 0.75 * 0.5, 0.25, 0.0, 0.5])
    entries, texts = _toy_corpus()
    mm = S.match_entries(texts, entries)
    cnt = S.entry_counts(mm, 3)
    keep, t = S.balanced_sample(mm, cnt, target=300, seed=0)
    assert len(keep) == 300 and len(set(keep.tolist())) == 300  # exactly the target, as the baselines get
    at_t, _ = S.balanced_sample(mm, cnt, t=t, seed=0)  # the same draws at that t: the set it was cut from
    below, _ = S.balanced_sample(mm, cnt, t=t * 0.999, seed=0)
    assert set(keep.tolist()) <= set(at_t.tolist()) and len(below) < 300 <= len(at_t)
    assert set(below.tolist()) <= set(keep.tolist())
    with pytest.raises(ValueError, match="must be in"):
        S.balanced_sample(mm, cnt, target=1100)  # more than the 1000 matched texts


def test_stand_in_captioner_is_concept_conditioned_short_and_seeded():
    concepts = ["harbor", "violin", "coat", "bicycle"] * 50
    cap = S.StandInCaptioner(seed=3)
    a, idx = S.generate_captions(cap, concepts, passes=2)
    assert len(a) == 400 and idx.tolist() == list(range(200)) * 2 and len(cap.labels) == 400
    assert all(c.split()[0] in t or c in t for c, t in zip(concepts * 2, a))  # the concept is in its caption
    assert max(len(t.split()) for t in a) <= 15
    assert S.StandInCaptioner(seed=3)(concepts) == a[:200]
    labels = S.StandInCaptioner(seed=3)
    labels(concepts)
    assert set(labels.labels[2::4].tolist()) == {4}  # "coat" concepts are coat captions
    prior = cap.class_prior()
    assert prior.max() / prior.min() > 5  # an LLM-like over-production of some garments


def test_caption_pool_is_written_once_and_read_back_with_its_labels(tmp_path):
    concepts = ["harbor", "violin", "coat"] * 5
    a, idx = S.generate_captions(S.StandInCaptioner(seed=1), concepts, passes=2, cache=tmp_path)
    files = list(tmp_path.glob("stand-in-s1-z1.2-*/pass-*.json"))
    assert len(files) == 2  # one checked file per pass, written as each pass is done
    class Refuses(S.StandInCaptioner):  # a cached pool never calls the captioner
        def __call__(self, *args, **kwargs):
            raise AssertionError("the captioner was called")

    reread = Refuses(seed=1)
    b, idx2 = S.generate_captions(reread, concepts, passes=2, cache=tmp_path)
    assert b == a and idx2.tolist() == idx.tolist() and len(reread.labels) == 30
    S.generate_captions(S.StandInCaptioner(seed=1), concepts, passes=3, cache=tmp_path)
    assert len(list(tmp_path.glob("*/"))) == 2  # other passes: another pool


def test_an_interrupted_caption_pool_resumes_at_its_first_missing_pass(tmp_path):
    """An LLM's pool of millions of captions is written pass by pass: a killed run redoes only the missing passes,
    and the pool equals an uninterrupted one."""
    concepts = ["harbor", "violin", "coat"] * 5
    full, _ = S.generate_captions(S.StandInCaptioner(seed=1), concepts, passes=3, cache=tmp_path / "a")

    class DiesInPass2(S.StandInCaptioner):
        def __call__(self, concepts, pass_index=0):
            if pass_index == 2:
                raise KeyboardInterrupt
            return super().__call__(concepts, pass_index)

    with pytest.raises(KeyboardInterrupt):
        S.generate_captions(DiesInPass2(seed=1), concepts, passes=3, cache=tmp_path / "b")
    calls = []

    class Counts(S.StandInCaptioner):
        def __call__(self, concepts, pass_index=0):
            calls.append(pass_index)
            return super().__call__(concepts, pass_index)

    again, _ = S.generate_captions(Counts(seed=1), concepts, passes=3, cache=tmp_path / "b")
    assert calls == [2] and again == full


def test_subset_bank_and_prompt_format():
    bank = [f"c{i}" for i in range(100)]
    assert S.subset_bank(bank, keep={"c3", "c50", "zz"}) == ["c3", "c50"]
    r = S.subset_bank(bank, n=10, seed=1)
    assert len(r) == 10 and r == sorted(r, key=bank.index) and r == S.subset_bank(bank, n=10, seed=1)
    assert llm.PROMPT.format(concept="cat").startswith("Your task is to write me an image caption")
    assert "Your concept is cat." in llm.PROMPT.format(concept="cat")
    ps = S.caption_prompts(["a", "b"], ["x"], None)
    assert ps.labels.tolist() == [-1, -1] and ps.prompts == ("a", "b")


def test_few_shot_prototypes_hand_case():
    # two well separated classes plus a third; prototypes classify queries perfectly
    rng = np.random.default_rng(0)
    centers = np.eye(3) * 10
    y = np.repeat(np.arange(3), 30)
    z = centers[y] + rng.normal(0, 0.5, (90, 3))
    out = evaluate.few_shot(z, y, n_way=3, k_shot=2, n_query=5, episodes=20, seed=0)
    assert out["top1"] == 1.0
    noise = rng.normal(size=(90, 3))
    low = evaluate.few_shot(noise, y, n_way=3, k_shot=2, n_query=5, episodes=200, seed=0)
    assert 0.2 < low["top1"] < 0.5  # chance is 1/3
    assert len(low["episode_top1"]) == 200 and low["episode_top1"].mean() == pytest.approx(low["top1"])
    again = evaluate.few_shot(noise * 2, y, n_way=3, k_shot=2, n_query=5, episodes=200, seed=0)
    assert np.array_equal(again["episode_top1"], low["episode_top1"])  # same episodes for every model
    with pytest.raises(ValueError, match="needs 4 classes"):
        evaluate.few_shot(z, y, n_way=4, k_shot=2, n_query=5)


def test_retrieval_recall_matches_clip_benchmark_definition():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    txt = torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.2, 1.0], [1.0, 0.9]])
    t2i = [0, 1, 1, 2]  # image 1 has two captions
    out = evaluate.retrieval_recall(img, txt, t2i, ks=(1, 2))
    # text queries: t0 -> top image 0 (hit); t1 -> 0 (miss, wants 1); t2 -> 1 (hit); t3 -> 2 (hit)
    assert out["image_retrieval_recall@1"] == pytest.approx(3 / 4)
    # image queries: i0 -> top text 1 (miss: i0's text is t0); i1 -> t2 (hit); i2 -> t3 (hit)
    assert out["text_retrieval_recall@1"] == pytest.approx(2 / 3)
    # top-2: t1's images are 0 and 2 (cos 1, .71) -> still a miss; image 0's top-2 texts are t1, t0 -> a hit
    assert out["image_retrieval_recall@2"] == pytest.approx(3 / 4) and out["text_retrieval_recall@2"] == 1.0
    per = evaluate.retrieval_recall(img, txt, t2i, ks=(1,), hits=True)  # per query, for bootstrap intervals
    assert per["image_retrieval_hits@1"].tolist() == [True, False, True, True]
    assert per["text_retrieval_hits@1"].tolist() == [False, True, True]
    with pytest.raises(ValueError, match="text_to_image"):
        evaluate.retrieval_recall(img, txt, [0, 1, 5, 2])


def test_retrieval_in_galleries_is_the_mean_over_folds():
    """``gallery=g`` (the COCO-1K protocol) equals recall computed on each fold of g images alone, averaged over the
    queries; one gallery of every image is the plain recall, and a gallery of one image always hits."""
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(12, 4, generator=g), torch.randn(12, 4, generator=g)
    t2i = np.repeat(np.arange(6), 2)[:12] * 2  # images 0, 2, 4, ... have two texts; odd images none
    t2i[-1] = 11
    out = evaluate.retrieval_recall(img, txt, t2i, ks=(1, 3), gallery=4)
    per_fold = []
    for f in range(3):
        sel = np.flatnonzero(t2i // 4 == f)
        per_fold.append((len(sel), evaluate.retrieval_recall(img[4 * f:4 * f + 4], txt[sel], t2i[sel] - 4 * f,
                                                             ks=(1, 3))))
    for key in ("image_retrieval_recall@1", "image_retrieval_recall@3"):  # text queries: weighted by their count
        assert out[key] == pytest.approx(sum(n * r[key] for n, r in per_fold) / 12)
    assert evaluate.retrieval_recall(img, txt, t2i, ks=(1,), gallery=12) == evaluate.retrieval_recall(img, txt, t2i,
                                                                                                       ks=(1,))
    assert evaluate.retrieval_recall(img, txt, np.arange(12), ks=(1,), gallery=1)["image_retrieval_recall@1"] == 1.0
    with pytest.raises(ValueError, match="gallery must be"):
        evaluate.retrieval_recall(img, txt, t2i, gallery=0)


def test_offline_concept_bank_is_all_wordnet_lemmas_plus_world_words():
    bank = S.concept_bank(extra=S.world_vocabulary())
    assert len(bank) > 140_000 and len(set(bank)) == len(bank)
    assert {"gym shoe", "dress", "harbor"} <= set(bank) and ({"Paris"} <= set(bank) or {"paris"} <= set(bank))
    assert "ankle boot" in bank and bank.index("ankle boot") > 140_000  # a world word WordNet lacks, appended
    assert S.wordnet_lemmas("r") == sorted(S.wordnet_lemmas("r")) and len(S.wordnet_lemmas("r")) > 4000
