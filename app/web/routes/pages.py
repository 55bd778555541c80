"""HTML pages rendered from templates/; their scripts fetch the JSON endpoints."""

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.diffusion.samplers import SAMPLERS
from app.instruments import coherence, compression, denoising, guidance
from app.lab import families
from app.web.benchmarks import REPRODUCE, SCALING_FILE, scaling_path
from app.web.schemas import GenerateRequest
from app.web.schemas.families import (
    FAMILIES,
    GUIDANCE_DEFAULTS,
    KNOB_FAMILIES,
    MAX_ROUNDS,
    MAX_TOP_K,
    TOKEN_FAMILIES,
)
from app.web.snippets import CFG_NORMS, DENOISING_WALK, Snippet, snippet_context
from app.web.state import state_of

router = APIRouter(include_in_schema=False)
NOT_PAGES = ("/api/", "/static/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics")


FAMILY_LABELS = {"diffusion": "diffusion: denoising steps (§3.3)",
                 "autoregressive": "autoregressive: one token per forward (EQ MM3.5)",
                 "masked": "masked: a few parallel rounds (MaskGIT)"}


def _generate_context() -> dict:
    """The /generate form's defaults, sampler and family names, and which family takes each knob, from the request
    schema (the caps come from GET /model)."""
    defaults = {name: field.default for name, field in GenerateRequest.model_fields.items() if name != "prompt"}
    return {"defaults": defaults, "samplers": sorted(SAMPLERS),
            "families": [(family, FAMILY_LABELS[family]) for family in FAMILIES],
            "knob_families": KNOB_FAMILIES, "token_families": " ".join(TOKEN_FAMILIES),
            "guidance_defaults": GUIDANCE_DEFAULTS, "max_top_k": MAX_TOP_K, "max_rounds": MAX_ROUNDS}


def _benchmarks_context(request: Request) -> dict:
    """Whether a scaling record is there: the page asks the API for it only then (no 404 in the console)."""
    path = scaling_path(state_of(request.app).settings.bench_results_dir)
    return {"recorded": path.is_file(), "results_file": f"bench/results/{SCALING_FILE}", "reproduce": REPRODUCE}


@dataclass(frozen=True)
class Page:
    path: str
    template: str
    title: str
    blurb: str
    label: str
    context: Callable[..., dict] | None = None  # extra template values, e.g. quiz answers computed by the domain code
    context_takes_request: bool = False  # context(request) rather than context()
    snippet: Snippet | None = None  # the chapter's runnable snippet the page carries (templates/partials/snippet.html)


PAGES = (
    Page(
        "/instruments/denoising",
        "instrument_denoising.html",
        "Denoising walk",
        "The forward process in closed form and an oracle reverse walk from static back to the data, step by step.",
        "EQ MM3.1 · MM3.2",
        context=denoising.page_context,
        snippet=DENOISING_WALK,
    ),
    Page(
        "/instruments/latent-vs-pixel",
        "instrument_compression.html",
        "Latent vs pixel",
        "How much a VAE shrinks the tensor the denoiser works on, and what that does to the cost of every step.",
        "MM3.1 · EQ MM3.3",
        context=compression.page_context,
    ),
    Page(
        "/instruments/guidance",
        "instrument_guidance.html",
        "Guidance scale",
        "Classifier-free guidance on a toy diffusion whose score is known exactly: adherence and diversity, measured.",
        "MM3.2 · EQ MM3.4",
        context=guidance.page_context,
        snippet=CFG_NORMS,
    ),
    Page(
        "/instruments/coherence",
        "instrument_coherence.html",
        "Frame coherence",
        "Denoise a moving object's path frame by frame or jointly, and watch flicker turn into motion.",
        "MM3.3 · EQ MM3.6",
        context=coherence.page_context,
    ),
    Page(
        "/instruments/families",
        "instrument_families.html",
        "Autoregressive & masked",
        "Three models draw one prompt: token by token, in confident rounds, or out of noise; the likelihood of every "
        "token, the codebook's ceiling, and what more tokens cost.",
        "§3.4 · EQ MM3.5",
        context=families.page_context,
    ),
    Page(
        "/generate",
        "generate.html",
        "Generate",
        "The trained latent diffusion model, live: watch x_t and the predicted clean image at every step.",
        "§3.3 · EQ MM3.1 · MM3.4",
        context=_generate_context,
    ),
    Page(
        "/benchmarks",
        "benchmarks.html",
        "Scaling benchmarks",
        "How sampling time grows with steps, batch and resolution: recorded measurements of the committed model.",
        "bench/scaling.py · recorded",
        context=_benchmarks_context,
        context_takes_request=True,
    ),
)


def _base(request: Request) -> str:
    """The path prefix the app is served under behind a proxy ("" when none): every URL a page names starts so."""
    return request.scope.get("root_path", "").rstrip("/")


def _render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    templates = state_of(request.app).templates
    return templates.TemplateResponse(request, template, {"pages": PAGES, "base": _base(request), **context},
                                      status_code=status_code)


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not a script calling the API, nor a static file)."""
    path = request.url.path.removeprefix(state_of(request.app).settings.root_path.rstrip("/"))
    return not path.startswith(NOT_PAGES) and "text/html" in request.headers.get("accept", "")


def not_found_page(request: Request) -> HTMLResponse:
    """404 as a page: what was asked for, and the pages there are."""
    return _render(request, "not_found.html", status_code=404, title="Not found", missing=request.url.path)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    return _render(request, "index.html", title="Diffusion Lab")


def _snippet(request: Request, snippet: Snippet) -> dict:
    state = state_of(request.app)
    return snippet_context(snippet, state.settings.static_dir, state.vendor, _base(request))


def _page_handler(page: Page):
    def handler(request: Request) -> HTMLResponse:
        if page.context is None:
            extra = {}
        else:
            extra = page.context(request) if page.context_takes_request else page.context()
        if page.snippet is not None:
            extra["snippet"] = _snippet(request, page.snippet)
        return _render(request, page.template, title=page.title, page=page, **extra)

    handler.__name__ = "page_" + page.template.removesuffix(".html")
    return handler


for _page in PAGES:
    router.add_api_route(_page.path, _page_handler(_page), methods=["GET"], response_class=HTMLResponse)
