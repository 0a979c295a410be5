"""SMLM methods end to end: tiny training of each network, prediction, evaluation, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight import api
from microsight.cli import main
from microsight.data.smlm import SimulationConfig, simulate
from microsight.errors import MicrosightError
from microsight.io.localizations import LOC_DTYPE, read_localizations, write_localizations

SIM = {"frames": 8, "shape": [16, 16], "density": 3.0}


def _config(method: str, **extra) -> dict:
    return {"name": "tiny", "method": {"method": method, "depth": 1, "base_channels": 4,
                                       "train_frames": 8, "val_frames": 2, "simulation": SIM,
                                       **extra},
            "data": {"patch_size": [16, 16], "batch_size": 4},
            "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 16}}


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("smlm")
    sim = simulate(SimulationConfig(**{**SIM, "seed": 9}))
    tifffile.imwrite(root / "movie.tif", sim.movie.astype(np.uint16))
    return root / "movie.tif", write_localizations(root / "truth.csv", sim.truth)


def test_localize_train_predict_evaluate(tmp_path: Path, movie: tuple[Path, Path]) -> None:
    model = api.train("localize", None, out=tmp_path / "loc", progress=False,
                      config=_config("localize", train_densities=[1.0, 4.0]))
    assert model.module.network.head.out_channels == 8  # p, 3 means, 3 log-sds, background
    assert model.qc["data"]["densities"] == [1.0, 4.0]
    out = api.predict(model, movie[0], axes="TYX", out=tmp_path / "locs.csv")
    table = read_localizations(out)
    assert table.dtype == LOC_DTYPE
    result = api.evaluate(model, movie[0], movie[1], report=tmp_path / "r.html")
    sources = [r["source"] for r in result.summary]
    assert sources == ["network", "classical MLE fit"]
    assert result.mean("classical MLE fit", "jaccard") > 0.1
    assert (tmp_path / "r.html").stat().st_size > 1000
    sim = simulate(SimulationConfig(**{**SIM, "seed": 21}))
    scores = type(model.module).choose_threshold(model, sim.movie, sim.truth, (0.05, 0.5))
    best = max(scores, key=scores.get)
    assert model.config.method.threshold == best


@pytest.mark.slow
def test_localize_3d_outputs_z(tmp_path: Path) -> None:
    sim3d = {**SIM, "psf": "astigmatic"}
    model = api.train("localize", None, out=tmp_path / "loc3d", progress=False,
                      config=_config("localize", simulation=sim3d, threshold=0.01,
                                     single_threshold=0.02))
    assert model.module.network.head.out_channels == 10
    frames = simulate(SimulationConfig(**{**sim3d, "seed": 4})).movie
    table = api.predict(model, frames, axes="TYX")
    # The untrained-ish network fires everywhere at this low threshold: z has values.
    assert len(table) > 0 and np.isfinite(table["sigma_z"]).all()


@pytest.mark.slow
def test_localize_from_movie_and_table(tmp_path: Path, movie: tuple[Path, Path]) -> None:
    model = api.train("localize", movie[0], movie[1], out=tmp_path / "own", axes="TYX",
                      progress=False, config=_config("localize"))
    assert model.qc["data"]["source"].endswith("movie.tif")
    with pytest.raises(MicrosightError, match="--target"):
        api.train("localize", movie[0], None, out=tmp_path / "bad", progress=False,
                  config=_config("localize"))


def test_deepstorm_train_and_reconstruct(tmp_path: Path, movie: tuple[Path, Path]) -> None:
    model = api.train("deepstorm", None, out=tmp_path / "ds", progress=False,
                      config=_config("deepstorm", factor=4))
    recon = api.predict(model, movie[0], axes="TYX")
    assert recon.shape == (64, 64) and recon.min() >= 0
    written = api.predict(model, movie[0], axes="TYX", out=tmp_path / "sr.tif")
    assert tifffile.imread(written).shape == (64, 64)
    result = api.evaluate(model, movie[0], movie[1])
    assert {r["source"] for r in result.rows} == {"network", "classical MLE fit"}
    assert all(np.isfinite(r["nmse"]) for r in result.rows)
    with pytest.raises(MicrosightError, match="--tolerance sets the matching distance"):
        api.evaluate(model, movie[0], movie[1], tolerance=100.0)
    with pytest.raises(MicrosightError, match=r"methods that can be tuned: .*localize"):
        api.tune(tmp_path / "ds", movie[0], movie[1], progress=False)


def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sim.tif"
    code = main(["simulate", "smlm", "--out", str(out), "--frames", "4", "--size", "16",
                 "--density", "2", "--camera", "scmos", "--seed", "3", "--thunderstorm"])
    assert code == 0
    movie = tifffile.imread(out)
    assert movie.shape == (4, 16, 16) and movie.dtype == np.uint16
    table = read_localizations(tmp_path / "sim.csv")
    assert len(table) > 0 and table["frame"].max() <= 3
    assert (tmp_path / "sim.csv").read_text().startswith('"id","frame","x [nm]"')
    assert main(["simulate", "smlm", "--out", str(out), "--psf", "bad"]) == 2
    assert "psf" in capsys.readouterr().err


@pytest.fixture(scope="module")
def loc_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loc") / "model"
    api.train("localize", None, out=out, progress=False, config=_config("localize"))
    return out


def test_tune_localize_saves_the_threshold(loc_bundle: Path, movie: tuple[Path, Path],
                                           tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    import shutil

    from microsight.engine.bundle import load_model

    bundle = shutil.copytree(loc_bundle, tmp_path / "m")
    result = api.tune(bundle, movie[0], movie[1], axes="TYX", objective="efficiency",
                      progress=False)
    assert result["n_emitters"] == len(read_localizations(movie[1]))
    assert result["objective"].startswith("efficiency")
    before = result["score_before"]
    assert before is None or result["score"] >= before
    stored = load_model(bundle)
    assert stored.config.method.threshold == result["params"]["threshold"]
    assert stored.config.method.single_threshold == result["params"]["single_threshold"]
    assert stored.qc["postprocessing"] == result
    # The command line: a simulated movie, the objective and both settings in words.
    assert main(["tune", str(bundle), "--input", "simulate", "--max-rmse", "400"]) == 0
    out = capsys.readouterr().out
    assert "lateral RMSE <= 400 nm" in out and "before: threshold" in out
    assert "chosen: threshold" in out
    # An impossible RMSE limit is one line and leaves the bundle as it was.
    config = (bundle / "config.yaml").read_text()
    assert main(["tune", str(bundle), "--input", "simulate", "--max-rmse", "0.001"]) == 2
    assert "no detection threshold keeps the RMSE" in capsys.readouterr().err
    assert (bundle / "config.yaml").read_text() == config
    with pytest.raises(MicrosightError, match="--target"):
        api.tune(bundle, movie[0], None, progress=False)
    with pytest.raises(MicrosightError, match="drop --target"):
        api.tune(bundle, "simulate", movie[1], progress=False)


def test_evaluate_tolerance(loc_bundle: Path, movie: tuple[Path, Path],
                            capsys: pytest.CaptureFixture) -> None:
    near = api.evaluate(loc_bundle, movie[0], movie[1], tolerance=1.0)
    far = api.evaluate(loc_bundle, movie[0], movie[1], tolerance=1000.0)
    fit = "classical MLE fit"
    assert near.mean(fit, "jaccard") < far.mean(fit, "jaccard")
    assert near.mean(fit, "jaccard") < 0.05
    with pytest.raises(MicrosightError, match="positive"):
        api.evaluate(loc_bundle, movie[0], movie[1], tolerance=0.0)
    assert main(["evaluate", str(loc_bundle), "--input", str(movie[0]), "--target",
                 str(movie[1]), "--tolerance", "1000"]) == 0


def test_prediction_warns_on_frame_independent_movies(loc_bundle: Path) -> None:
    sim = simulate(SimulationConfig(**{**SIM, "frames": 60, "shape": [32, 32], "seed": 2}))
    shuffled = sim.movie[np.random.default_rng(0).permutation(60)]
    with pytest.warns(UserWarning, match="context: 0"):
        api.predict(loc_bundle, shuffled, axes="TYX")


def test_training_on_simulation_tunes_the_threshold(loc_bundle: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from microsight.engine.bundle import load_model
    from microsight.families.smlm import tuning

    bundle = shutil.copytree(loc_bundle, tmp_path / "m")
    model = load_model(bundle)
    seen = {}

    def chosen(model, movie, truth, **kwargs):
        seen["frames"] = len(movie)
        return tuning.DetectionTuning({"threshold": 0.15, "single_threshold": 0.25}, 0.7,
                                      {"threshold": 0.5, "single_threshold": 0.6}, 0.3,
                                      n_frames=len(movie), n_emitters=len(truth),
                                      objective="jaccard", metrics={}, metrics_before={})

    monkeypatch.setattr(tuning, "tune_detection", chosen)
    tuned = type(model.module).after_training(model, None, bundle)
    assert seen["frames"] == model.config.method.val_frames  # the validation movie again
    stored = load_model(bundle)
    assert tuned.config.method.threshold == stored.config.method.threshold == 0.15
    assert "simulated validation movie" in stored.qc["postprocessing"]["movie"]

    off = load_model(bundle)
    off.config.method.tune_threshold = False
    seen.clear()
    type(off.module).after_training(off, None, bundle)
    assert not seen  # nothing tuned


def test_tiny_model_keeps_its_threshold_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="detection threshold left at 0.5 after training"):
        model = api.train("localize", None, out=tmp_path / "m", progress=False,
                          config=_config("localize"))
    assert model.config.method.threshold == 0.5 and "postprocessing" not in model.qc
