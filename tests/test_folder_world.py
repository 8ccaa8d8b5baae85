"""The paper profile's world: ImageNet-style class folders behind the mini world's interface.

A small folder world is written from the mini world's own images (class folders named by the classes' real
WordNet ids, a classes.txt in the oracle's output order, BLIP-2-style caption file), then read back through
``world.open_world`` and driven through notebook 01 with models named by path, as the paper profile names them."""
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from synscale import metrics, models, train
from synscale import prompts as P
from synscale.evaluate import content_key
from synscale.imagesets import Sweep
from synscale.world import classes as C
from synscale.world import default_dir, load, open_world
from synscale.world import text as T
from synscale.world.folder import FolderWorld, FolderWorldError, ImageFiles

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


@pytest.fixture(scope="module")
def laion(tmp_path_factory, world):
    """LAION as img2dataset writes it: 3 shards of 50 (jpg, txt, json) samples, from the mini pool."""
    import io

    import webdataset as wds

    out = tmp_path_factory.mktemp("laion")
    x, _ = world.split("pool", 150)
    caps = world.captions("pool", 150)
    for s in range(3):
        with wds.TarWriter(str(out / f"{s:05d}.tar")) as w:
            for i in range(50 * s, 50 * s + 50):
                buf = io.BytesIO()
                Image.fromarray(x[i]).convert("RGB").save(buf, format="JPEG", quality=95)
                w.write({"__key__": f"{i:09d}", "jpg": buf.getvalue(), "txt": caps[i], "json": b"{}"})
    return out


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
    with pytest.raises(FolderWorldError, match="synscale.world.folder caption"):
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
    with pytest.raises(FileNotFoundError, match="pt_inception"):
        metrics.fid_network(str(tmp_path / "missing.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
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


@pytest.mark.notebook
def test_prompt_design_notebook_runs_on_a_folder_world_with_models_by_path(folder, tmp_path, monkeypatch):
    """Notebook 01 as the paper profile drives it (a folder world, weights by local path), at toy size."""
    from synscale import params as PF
    from synscale import run as R

    root, _ = folder
    monkeypatch.setenv("SYNSCALE_OUTPUTS", str(tmp_path))
    base = PF.load(R.params_dir() / "01_prompt_design.yaml", R.notebooks_dir() / "01_prompt_design.ipynb")
    run = base.runs("smoke")[0]
    params = {**run.params, "world": str(root), "model": str(default_dir() / "sd"),
              "oracle_model": str(default_dir() / "oracle"), "prompt_configs": ["classnames", "in_captions"],
              "grid_per_class": 2, "store_size": 32}
    res = R.execute(dataclasses.replace(run, profile="folder", params=params), tmp_path, html=False)
    assert res.ok, res.error + (res.path / "run.log").read_text()[-3000:]
    got = json.loads((res.path / "metrics.json").read_text())
    assert 0 <= got["recognizability.in_captions.cfg7.5"] <= 1
    assert got["fid.in_captions.cfg7.5"] < 200 and got["wall_time_s"] > 0  # real and generated both at 32 px
    cached = list((tmp_path / "_cache" / "synthetic").glob("sd@*/in_captions/*/metrics_oracle@*_val_imagenet_like*"))
    assert cached, "metrics are cached under the folder world's name"


@pytest.mark.notebook
def test_synthetic_1p3m_notebook_trains_on_a_folder_world_from_shards_and_files(folder, tmp_path, monkeypatch):
    """Notebook 03 as the paper profile drives it: the real arm read from image files, the synthetic arm from its
    shards, batches decoded in DataLoader workers, generator weights per family by path."""
    from synscale import params as PF
    from synscale import run as R

    root, _ = folder
    monkeypatch.setenv("SYNSCALE_OUTPUTS", str(tmp_path))
    base = PF.load(R.params_dir() / "03_synthetic_1p3m.yaml", R.notebooks_dir() / "03_synthetic_1p3m.ipynb")
    run = base.runs("smoke")[0]
    params = {**run.params, "world": str(root), "family_models": {"sd": str(default_dir() / "sd")},
              "oracle_model": str(default_dir() / "oracle"), "specs": ["real", "sd/classnames/2.0"],
              "store_size": 32, "workers": 2}
    res = R.execute(dataclasses.replace(run, profile="folder", params=params), tmp_path, html=False)
    assert res.ok, res.error + (res.path / "run.log").read_text()[-3000:]
    table = (res.path / "tables" / "d_i_metrics.csv").read_text()
    assert "real" in table and "sd/classnames/2" in table
    trained = list((tmp_path / "_cache" / "classifiers").glob("*/*/n30_seed0/stats.json"))
    assert len(trained) == 2  # D_I = 3 per class x 10 classes, one model per arm


@pytest.mark.notebook
def test_clip_mixing_notebook_trains_with_open_clip_on_shards_and_evaluates_folder_sets(folder, world, laion,
                                                                                         tmp_path, monkeypatch):
    """Notebook 06 as the paper profile drives it: LAION-like (jpg, txt) shards, synthetic shards generated from
    their captions, open_clip's own trainer on exact n-sample shard prefixes (one not on a shard boundary),
    zero-shot on the folder world's val split and on downstream sets by folder. synthetic+real runs alone: it
    trains on both sources (real and generated shard prefixes, resampled 1:1), which the other modes use singly."""
    from synscale import params as PF
    from synscale import run as R
    from synscale.world import downstream

    root, _ = folder
    zs = tmp_path / "zeroshot"
    for task in ("coarse", "tone"):
        _, _, xte, yte = world.downstream(task)
        for c, name in enumerate(downstream.class_names(task)):
            (zs / task / "test" / name.replace(" ", "_")).mkdir(parents=True)
            for j, i in enumerate(np.flatnonzero(yte == c)[:4]):
                Image.fromarray(xte[i]).save(zs / task / "test" / name.replace(" ", "_") / f"{j}.png")
    monkeypatch.setenv("SYNSCALE_OUTPUTS", str(tmp_path / "out"))
    base = PF.load(R.params_dir() / "06_clip_mixing.yaml", R.notebooks_dir() / "06_clip_mixing.ipynb")
    run = base.runs("smoke")[0]
    params = {**run.params, "trainer": "open_clip", "world": str(root), "laion_shards": str(laion),
              "zeroshot_root": str(zs), "zeroshot_tasks": ["coarse", "tone"], "scales": [50, 80],
              "modes": ["synthetic+real"], "cfg_table": [1.5], "hparam_scales": [], "noise_seeds": [],
              "workers": 1, "val_n": 40, "downstream_n": 12, "gen_shard_size": 32}
    res = R.execute(dataclasses.replace(run, profile="folder", params=params), tmp_path / "out", html=False)
    assert res.ok, res.error + (res.path / "run.log").read_text()[-3000:]
    import pandas as pd

    z = pd.read_csv(res.path / "tables" / "zero_shot.csv")
    assert set(z.dataset) == {"val", "coarse", "tone"} and len(z) == 2 * 3
    assert set(z[z.dataset == "val"].n_images) == {40} and set(z[z.dataset == "tone"].n_images) == {12}
    assert z.train_loss.notna().all() and (z.top1.between(0, 1)).all()
    outs = sorted((tmp_path / "out" / "_cache" / "open_clip").glob("*.out"))
    assert len(outs) == 2 and all("Train Epoch" in o.read_text() for o in outs)
    mixed = next((tmp_path / "out" / "_cache" / "open_clip").glob("synthetic_real-50-*/params.txt")).read_text()
    assert "dataset_resampled: True" in mixed and "train_data_upsampling_factors: " in mixed
    cuts = sorted(p.name.rsplit("-", 1)[1] for p in (tmp_path / "out" / "_cache" / "open_clip" / "subsets").glob("*"))
    assert cuts == ["first18.tar", "first30.tar"]  # LAION 80 = 50 + 30; synthetic 50 = 32 + 18 (others on boundaries)


def test_synthclip_five_tasks_on_probe_retrieval_and_val_folders(folder, world, tmp_path):
    """The paper profile's five-task benchmark of 08 (synthclip.folder_benchmark): probe sets, a retrieval set with
    two captions per image, the folder world's val split; scored with the mini CLIP."""
    from synscale import clip
    from synscale import synthclip as S
    from synscale.world import downstream

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


@pytest.mark.notebook
def test_retrieval_notebook_streams_a_shard_pool_and_adapts_on_train_val_test_folders(folder, laion, tmp_path,
                                                                                        monkeypatch):
    """Notebook 07 as the paper profile drives it: the downstream task as train/val/test class folders, the pool as
    LAION-like (jpg, txt) shards streamed by retrieval.match_shards, the CLIP named by architecture and weights
    file, finetuning batches decoded in a DataLoader worker."""
    import shutil

    import pandas as pd

    from synscale import clip as CL
    from synscale import params as PF
    from synscale import run as R

    root, _ = folder
    task = tmp_path / "task"
    for split, src in (("train", "train"), ("val", "val"), ("test", "val")):
        shutil.copytree(root / src, task / split)
    shutil.copy(root / "classes.txt", task / "classes.txt")
    monkeypatch.setenv("SYNSCALE_OUTPUTS", str(tmp_path / "out"))
    base = PF.load(R.params_dir() / "07_retrieval_baseline.yaml", R.notebooks_dir() / "07_retrieval_baseline.ipynb")
    run = base.runs("smoke")[0]
    params = {**run.params, "world": str(task), "pool": str(laion), "clip_arch": CL.MINI_NAME,
              "clip_model": str(default_dir() / "clip" / CL.WEIGHTS_FILE), "pool_limit": 120, "workers": 1,
              "grid_per_class": 2}
    res = R.execute(dataclasses.replace(run, profile="folder", params=params), tmp_path / "out", html=False)
    assert res.ok, res.error + (res.path / "run.log").read_text()[-3000:]
    per_class = pd.read_csv(res.path / "tables" / "retrieval_per_class.csv")
    assert per_class.substring_found.sum() > 0 and per_class.substring_precision.isna().all()  # no pool labels
    got = json.loads((res.path / "metrics.json").read_text())
    assert got["lp_top1.retrieved.n10"] > 0 and got["lp_top1.synthetic.n20"] > 0
    curve = pd.read_csv(res.path / "tables" / "adaptation.csv")
    assert set(curve.arm) == {"retrieved", "synthetic"} and (curve.lp_top1.between(0, 1)).all()


def test_fgvc_aircraft_becomes_a_train_val_test_folder_world(tmp_path):
    from synscale.world.folder import aircraft_folders

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
