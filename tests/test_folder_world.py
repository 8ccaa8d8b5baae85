"""The paper profile's world: ImageNet-style class folders behind the mini world's interface.

A small folder world is written from the mini world's own images (class folders named by the classes' real
WordNet ids, a classes.txt in the oracle's output order, BLIP-2-style caption file), then read back through
``world.open_world`` and driven through notebook 01 with models named by path, as the paper profile names them."""

import numpy as np
import pytest
from PIL import Image

from synscale.data import prompts as P
from synscale.data.arrays import content_key
from synscale.data.world import classes as C
from synscale.data.world import default_dir, load, open_world
from synscale.data.world import text as T
from synscale.data.world.folder import FolderWorld, FolderWorldError, ImageFiles
from synscale.methods import metrics, models, train
from synscale.methods.imagesets import Sweep

PER_CLASS = {"train": 6, "val": 4}


@pytest.fixture(scope="module")
def world():
    return load()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("imagenet_like")
    wnids = [f"n{T.synset(s).offset():08d}" for s in C.SYNSETS]
    (root / "classes.txt").write_text("".join(f"{w}\t{n}\n" for w, n in zip(wnids, C.NAMES)))
    caps = []
    for split, k in PER_CLASS.items():
        x, y = world.split(split)
        texts = world.captions(split)
        for c, w in enumerate(wnids):
            (root / split / w).mkdir(parents=True)
            for j, i in enumerate(np.flatnonzero(y == c)[:k]):
                rel = f"{split}/{w}/img{j:02d}.png"
                Image.fromarray(x[i]).save(root / rel)
                caps.append(f"{rel}\t{texts[i]}")
    (root / "captions").mkdir()
    (root / "captions" / "train.tsv").write_text("\n".join(caps) + "\n")
    return root, wnids


def test_folder_world_reads_splits_lazily_in_nested_class_balanced_order(folder, world):
    root, wnids = folder
    fw = open_world(str(root))
    assert isinstance(fw, FolderWorld) and fw.wnids == wnids and fw.classes == list(C.NAMES)
    fw32 = FolderWorld(root, image_size=32)
    x, y = fw32.split("train")
    assert isinstance(x, ImageFiles) and x.shape == (60, 32, 32, 3) and len(y) == 60
    assert list(y[:10]) == list(range(10)) and np.bincount(y).tolist() == [6] * 10  # round-robin over classes
    xs, ys = fw32.split("train", 20)
    assert xs.paths == x.paths[:20] and (ys == y[:20]).all()  # nested prefix
    first = x[0]
    src = np.asarray(Image.open(x.paths[0]))
    assert first.shape == (32, 32, 3) and (first == src[..., None]).all()  # grey decoded to RGB, no resize at 32
    assert x[np.array([3, 1])].shape == (2, 32, 32, 3) and (x[1:2][0] == x[1]).all()
    assert fw.split("val")[0].shape == (40, 256, 256, 3)  # stored size: shorter side 256, centre crop
    assert content_key(x) == content_key(fw32.split("train")[0]) != content_key(xs)
    assert fw.synsets() == list(C.SYNSETS)


def test_folder_world_captions_and_prompts(folder, world):
    root, _ = folder
    fw = FolderWorld(root)
    caps = fw.captions("train")
    _, y = fw.split("train")
    assert len(caps) == len(y) and all(caps)
    ps = P.for_world("in_captions", fw, 2, seed=0)
    assert all(p.startswith(f"{fw.classes[k]}, ") for p, k in zip(ps.prompts, ps.labels))
    hyp = P.for_world("classnames_hypernyms", fw, 1, seed=0)
    assert hyp.prompts == P.for_world("classnames_hypernyms", world, 1, seed=0).prompts  # same synsets as mini


def test_folder_world_errors_name_what_is_missing(folder, tmp_path):
    root, _ = folder
    with pytest.raises(FolderWorldError, match="does not exist"):
        open_world(str(tmp_path / "nowhere"))
    with pytest.raises(FolderWorldError, match="split 'sketch' not found"):
        FolderWorld(root).split("sketch")
    with pytest.raises(FolderWorldError, match="synscale caption --root"):
        FolderWorld(root).captions("val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderWorldError, match="no train/, val/ or test/"):
        _ = FolderWorld(tmp_path / "empty").classes
    three = tmp_path / "three"
    (three / "val").mkdir(parents=True)
    (three / "classes.txt").write_text("n01440764\nn01443537\nn01484850\n")
    with pytest.raises(ValueError, match="the oracle has 10 outputs but the world 3 classes"):
        Sweep(FolderWorld(three), models.oracle("mini"), "sd")  # before any generation


def test_eval_preprocess_keeps_mini_inputs_and_uses_timm_eval_transform_for_a_vit():
    import timm
    from timm.data import create_transform, resolve_data_config

    oracle = models.oracle("mini")
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    assert train.eval_preprocess(oracle, 32)(x).equal(train.to_input(x))  # the mini path is bit-identical
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10)
    big = np.random.default_rng(1).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    got = train.eval_preprocess(vit, 256)(big)
    tf = create_transform(**resolve_data_config(model=vit))
    assert got.shape == (2, 3, 224, 224) and got[1].equal(tf(Image.fromarray(big[1])))


def test_paper_fid_and_lpips_networks_resolve_offline_or_say_what_is_missing(tmp_path, monkeypatch):
    import torch
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    assert metrics.fid_network("oracle") is None and metrics.lpips_network("oracle") is None
    with pytest.raises(FileNotFoundError, match="fid_inception weights .*missing.pth. not found.*FID_INCEPTION"):
        metrics.fid_network(str(tmp_path / "missing.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth does not exist \(TORCH_HOME\)"):
        metrics.fid_network("paper:fid_inception")
    with pytest.raises(FileNotFoundError, match="AlexNet weights"):
        metrics.lpips_network("alex")
    with pytest.raises(ValueError, match="lpips_net must be"):
        metrics.lpips_network("resnet")
    # FID's Inception path end to end, on random weights in the file format torch-fidelity reads
    with monkeypatch.context() as m:
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        m.setattr(fe.torch, "load", lambda *a, **k: {})
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="x")
    torch.save(net.state_dict(), tmp_path / "inception.pth")
    feats = metrics.fid_network(str(tmp_path / "inception.pth"), batch_size=4)
    imgs = np.random.default_rng(0).integers(0, 256, (6, 32, 32), dtype=np.uint8)
    f = feats(imgs)
    assert f.shape == (6, 2048) and np.isfinite(f).all()


def test_synthclip_five_tasks_on_probe_retrieval_and_val_folders(folder, world, tmp_path):
    """The paper profile's five-task benchmark of 08 (synthclip.folder_benchmark): probe sets, a retrieval set with
    two captions per image, the folder world's val split; scored with the mini CLIP."""
    from synscale.data.world import downstream
    from synscale.methods import clip
    from synscale.studies import synthclip as S

    root, _ = folder
    probes = tmp_path / "probes"
    for task in ("coarse", "tone"):
        xtr, ytr, xte, yte = world.downstream(task)
        for split, xs, ys, k in (("train", xtr, ytr, 6), ("test", xte, yte, 20)):
            for c, name in enumerate(downstream.class_names(task)):
                d = probes / task / split / name.replace(" ", "_")
                d.mkdir(parents=True)
                for j, i in enumerate(np.flatnonzero(ys == c)[:k]):
                    Image.fromarray(xs[i]).save(d / f"{j}.png")
    ret = tmp_path / "retrieval" / "coco"
    (ret / "img").mkdir(parents=True)
    xr, _ = world.split("v2", 12)
    lines = []
    for i, cap in enumerate(world.captions("v2", 12)):
        Image.fromarray(xr[i]).save(ret / "img" / f"{i}.png")
        lines += [f"img/{i}.png\t{cap}", f"img/{i}.png\ta photo: {cap}"]
    (ret / "captions.tsv").write_text("\n".join(lines) + "\n")
    bench = S.folder_benchmark(open_world(str(root), image_size=32), probes, ["coarse", "tone"], ret.parent, ["coco"],
                               32, zero_shot_n=20, retrieval_n=10)
    images, texts, t2i = bench.retrieval["coco"]
    assert len(images) == 10 and len(texts) == 20 and t2i.tolist() == [i // 2 for i in range(20)]
    assert texts[:2] == [world.captions("v2", 1)[0], "a photo: " + world.captions("v2", 1)[0]]
    assert np.abs(images[3][..., 0].astype(int) - xr[3]).max() == 0  # PNG at its own size: the same pixels
    xtr, ytr, xte, yte = bench.probes["tone"]
    assert len(xtr) == 18 and len(xte) == 60 and sorted(set(ytr.tolist())) == [0, 1, 2]
    assert len(bench.zero_shot[0]) == 20 and bench.zero_shot[2] == list(C.NAMES)
    model, _, tok = clip.create(pretrained=default_dir() / "clip")
    got = S.five_tasks(model, tok, bench, few_shot_kw={"episodes": 5})
    for task in ("linear_probing", "few_shot", "image_retrieval", "text_retrieval", "zero_shot"):
        assert 0 <= got[task] <= 100, task
    assert got["image_retrieval"] == got["image_retrieval.coco"] and "few_shot.coarse" in got
    assert got["zero_shot"] > 30  # the shipped mini CLIP on its own world's val images (chance: 10)


def test_fgvc_aircraft_becomes_a_train_val_test_folder_world(tmp_path):
    from synscale.data.world.folder import aircraft_folders

    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    (data / "images").mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\nA340-500\nF/A-18\n")
    rows = {"train": ["0001 707-320", "0002 A340-500", "0003 F/A-18"], "val": ["0004 A340-500"],
            "test": ["0005 F/A-18"]}
    for split, lines in rows.items():
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            Image.new("RGB", (40, 30), (10, 20, 30)).save(data / "images" / f"{line.split()[0]}.jpg")
    w = FolderWorld(aircraft_folders(tmp_path / "fgvc-aircraft-2013b", tmp_path / "aircraft"), image_size=16)
    assert w.classes == ["707-320", "A340-500", "F/A-18"] and w.wnids[2] == "F_A-18"
    x, y = w.split("test")
    assert y.tolist() == [2] and x[0].shape == (16, 16, 3)
    assert w.split("train")[1].tolist() == [0, 1, 2]
    with pytest.raises(FolderWorldError, match="variants.txt"):
        aircraft_folders(tmp_path, tmp_path / "x")
