"""Progress of launched jobs (synscale.runtime.progress): a job's rank 0 reports its bar to a file, the waiting notebook
shows it as its own bar."""
import threading
import time

from synscale.runtime import progress


def test_a_jobs_bar_reports_to_its_file_on_rank_0_only(tmp_path, monkeypatch):
    report = tmp_path / "job.progress.json"
    monkeypatch.setenv(progress.FILE_ENV, str(report))
    monkeypatch.setenv("RANK", "1")
    for _ in progress.bar(range(3), desc="generate", disable=True):
        pass
    assert not report.exists()  # other ranks write nothing
    monkeypatch.setenv("RANK", "0")
    for _ in progress.bar(range(3), desc="generate", unit="img", disable=True):  # a job's bar is never disabled
        pass
    assert progress.read_report(report) == {"n": 3, "total": 3, "desc": "generate", "unit": "img"}
    monkeypatch.delenv(progress.FILE_ENV)
    report.unlink()
    for _ in progress.bar(range(3), disable=True):
        pass
    assert not report.exists()  # outside a job: no report


def test_follow_shows_the_jobs_reports_until_it_finishes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNSCALE_BATCH", "1")  # a text bar on stderr, as in a runner's kernel
    monkeypatch.setenv("TQDM_MININTERVAL", "0")
    report = tmp_path / "job.progress.json"
    finished = threading.Event()

    def job():
        for i in range(1, 4):
            progress.write_report(report, i, 3, "train_loop", "step")
            time.sleep(0.05)
        finished.set()

    t = threading.Thread(target=job)
    t.start()
    progress.follow(report, finished.is_set, "job clf", poll_s=0.01)
    t.join()
    err = capsys.readouterr().err
    assert "job clf: train_loop" in err and "3/3" in err, err
