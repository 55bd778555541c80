"""The chapter's runnable snippets: our code for each (static/snippets/), what its page compares with the server's
instrument, and the edits that break it on purpose.

The code runs only in the reader's browser (static/js/snippet.js, Pyodide in a Web Worker); the server reads the
files as text to put them in the page. Each snippet computes what the chapter's prints, with the same algorithm,
schedule, seed and numbers, in our own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.web.security import SNIPPET_WORKER_PATH
from app.web.vendor_assets import VendorAssets

TIME_LIMIT_S = 10  # a run that has not ended by then is stopped, as Stop would
RUNTIME = "/static/py/snippet_runtime.py"


@dataclass(frozen=True)
class Break:
    """A suggested edit to our code (`find` becomes `replace`, once) and the failure it shows, by name."""

    label: str
    find: str
    replace: str
    failure: str
    explain: str


@dataclass(frozen=True)
class Snippet:
    file: str  # under static/snippets/
    title: str
    report: tuple[str, ...]  # the globals the page reads after a run, to ask the server for the same parameters
    breaks: tuple[Break, ...]

    def code(self, static_dir: Path) -> str:
        return (Path(static_dir) / "snippets" / self.file).read_text(encoding="utf-8")


DENOISING_WALK = Snippet(
    file="denoising_walk.py",
    title="The chapter's denoising walk, in your browser",
    report=("seed", "target", "T", "beta", "alpha_bar", "x"),
    breaks=(
        Break(
            label="End the schedule at ᾱ = 0",
            find="beta = np.linspace(0.001, 0.08, T)",
            replace="beta = np.linspace(0.001, 1.0, T)",
            failure="zero terminal SNR",
            explain="β = 1 at the last step leaves ᾱ = 0 there: pure noise, as EQ MM3.1 wants, but the first x̂0 "
                    "divides by √ᾱ = 0, and the nan that 0/0 makes is carried to the end of the walk. Models whose "
                    "schedule ends at zero signal predict v or x0 instead of ε.",
        ),
        Break(
            label="Give the oracle a wrong ε",
            find="return (x_t - np.sqrt(alpha_bar[t]) * target) / np.sqrt(1.0 - alpha_bar[t])",
            replace="return np.zeros_like(x_t)  # sees no noise at all",
            failure="a denoiser that removes nothing",
            explain="With ε̂ = 0 the clean guess is x_t / √ᾱ: every step divides the static by √ᾱ instead of "
                    "removing it, so the walk ends far from x0 (L2 distance over 8). Only the noise estimate knows "
                    "where the data is.",
        ),
        Break(
            label="Make the schedule too gentle",
            find="beta = np.linspace(0.001, 0.08, T)",
            replace="beta = np.linspace(0.0001, 0.002, T)",
            failure="the prior mismatch",
            explain="ᾱ is still 0.96 where the walk starts, so the forward process never makes the static the walk "
                    "starts from. The oracle lands anyway (it knows x0), which is why the server agrees; a trained "
                    "network would be denoising inputs it never saw.",
        ),
    ),
)

CFG_NORMS = Snippet(
    file="cfg_norms.py",
    title="The chapter's CFG table, in your browser",
    report=("eps_uncond", "eps_cond", "scales", "norms"),
    breaks=(
        Break(
            label="Use s = 30",
            find="scales = [0.0, 1.0, 3.0, 7.5, 15.0]",
            replace="scales = [0.0, 1.0, 3.0, 7.5, 15.0, 30.0]",
            failure="over-guidance",
            explain="At s = 30 the guided estimate is about 15 long, 26 times the conditional one: a sampler that "
                    "subtracts that much noise paints far too much signal, the fried, oversaturated look.",
        ),
        Break(
            label="Let the caption change nothing",
            find="eps_cond = np.array([0.50, 0.30, 0.05])",
            replace="eps_cond = eps_uncond.copy()",
            failure="no conditional direction",
            explain="When ε_c equals ε_∅ (a caption the model cannot read, say) the bracket of EQ MM3.4 is zero: every "
                    "s gives the same estimate and the chart is flat. Guidance can only amplify a difference the "
                    "model already makes. The server agrees, since only the inputs changed.",
        ),
        Break(
            label="Start from ε_c instead of ε_∅",
            find="return eps_uncond + s * (eps_cond - eps_uncond)",
            replace="return eps_cond + s * (eps_cond - eps_uncond)",
            failure="the off-by-one convention",
            explain="Starting the step at ε_c is the 1 + w convention mixed into EQ MM3.4: s = 0 no longer drops the "
                    "prompt and every row is one step further than it should be. The server, which follows EQ MM3.4, "
                    "disagrees.",
        ),
    ),
)


def snippet_context(snippet: Snippet, static_dir: Path, vendor: VendorAssets, base: str) -> dict:
    """What templates/partials/snippet.html needs: the code, its breaks, and where the browser finds Python."""
    return {
        "title": snippet.title,
        "filename": snippet.file,
        "code": snippet.code(static_dir),
        "report": list(snippet.report),
        "breaks": snippet.breaks,
        "time_limit_s": TIME_LIMIT_S,
        "worker_url": base + SNIPPET_WORKER_PATH,
        "runtime_url": base + RUNTIME,
        "vendor": vendor.urls(base),
    }
