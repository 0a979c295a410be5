"""The HTML report of a run: agents side by side, plots over time."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from microsight.qc.report import Report


def _cumulative_dose(summary: dict[str, Any]) -> tuple[list[float], list[float]]:
    times, doses = zip(*summary["timeline"], strict=True) if summary.get("timeline") else ([], [])
    return list(times), list(np.cumsum(doses))


def _dose_rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    high = summaries.get("fixed-high", {}).get("total_dose")
    rows = []
    for name, s in summaries.items():
        rows.append({"agent": name, "total dose": s["total_dose"],
                     "dose vs fixed-high": s["total_dose"] / high if high else None,
                     "PSNR (dB)": s["psnr_mean"], "raw PSNR (dB)": s.get("psnr_raw_mean"),
                     "restored PSNR (dB)": s.get("psnr_restored_mean"),
                     "fluorophores left": s["fluorophores_left"], "frames": s["frames"]})
    return rows


def _event_rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    fast = summaries.get("fixed-fast", {}).get("total_dose")
    return [{"agent": name, "total dose": s["total_dose"],
             "dose vs fixed-fast": s["total_dose"] / fast if fast else None,
             "mitoses": s["n_events"], "split imaged fast": s["events_fast"],
             "frames per mitosis": s["frames_in_mitosis"],
             "fluorophores left": s["fluorophores_left"], "frames": s["frames"]}
            for name, s in summaries.items()]


def _dose_figure(summaries: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    for name, s in summaries.items():
        times, cum = _cumulative_dose(s)
        ax1.plot(times, cum, label=name)
        by_t: dict[float, list[float]] = {}
        for row in s["images"]:
            by_t.setdefault(row["minutes"], []).append(row["psnr"])
        ts = sorted(by_t)
        ax2.plot(ts, [np.mean(by_t[t]) for t in ts], marker="o", label=name)
    ax1.set(xlabel="time (min)", ylabel="cumulative dose", title="light spent")
    ax2.set(xlabel="time (min)", ylabel="PSNR (dB)", title="quality against ground truth")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _event_figure(summaries: dict[str, dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(9, 1.2 + 1.0 * len(summaries)))
    axes = np.atleast_1d(fig.subplots(len(summaries) + 1, 1, sharex=True))
    for ax, (name, s) in zip(axes[:-1], summaries.items(), strict=False):
        frames = s.get("frame_times", [])
        n = max([f for _, f in frames], default=0) + 1
        for event in s["events"]:
            # Each field has its own band: its frames and its mitoses.
            ax.axvspan(event["start"], event["end"], ymin=event["field"] / n,
                       ymax=(event["field"] + 1) / n, color="tab:orange", alpha=0.3)
        ax.plot([t for t, _ in frames], [f for _, f in frames], "|", color="k", ms=6)
        ax.set_ylim(-0.5, n - 0.5)
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        ax.set_yticks([])
    for name, s in summaries.items():
        times, cum = _cumulative_dose(s)
        axes[-1].plot(times, cum, label=name)
    axes[-1].set(xlabel="time (min)", ylabel="dose")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def build_report(record: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> Report:
    """The report of a run: settings, a table per agent, and plots over time."""
    scenario = record["scenario"]
    report = Report(f"Simulated acquisition: {scenario} scenario",
                    subtitle=f"seed {record['seed']}, engine {record.get('engine')}")
    report.add_text("What was simulated", record.get("description", ""))
    if scenario == "dose":
        report.add_table("Agents", _dose_rows(summaries),
                         note="PSNR of the delivered images against the specimen's "
                              "ground truth, mean over fields and time points; raw / "
                              "restored: the other image of the fixed protocols.")
        report.add_figure("Over time", _dose_figure(summaries))
    else:
        report.add_table("Agents", _event_rows(summaries),
                         note="A mitosis counts as imaged fast when every gap between the "
                              "frames spanning its anaphase is at most the fast interval.")
        report.add_figure("Frames and mitoses over time", _event_figure(summaries),
                          caption="Ticks: frames, one row per field; shaded: that field's "
                                  "mitoses.")
    report.add_key_values("Calibration", {k: v for k, v in record.get("calibration", {}).items()
                                          if not isinstance(v, (list, dict))})
    report.add_key_values("Settings", record.get("settings", {}))
    return report
