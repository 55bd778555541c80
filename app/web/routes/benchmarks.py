"""GET /benchmarks/scaling: bench/results/scaling.json as bench/scaling.py recorded it (never measured live)."""

from fastapi import APIRouter, HTTPException

from app.web import schemas
from app.web.benchmarks import ScalingUnavailable, read_scaling
from app.web.deps import SettingsDep

router = APIRouter(prefix="/benchmarks", tags=["benchmarks"])


@router.get("/scaling", summary="Recorded: how sampling time grows with steps, batch and resolution",
            responses={404: {"model": schemas.Refused,
                             "description": "No measurement is recorded on this server (the file is absent)"},
                       503: {"model": schemas.Refused,
                             "description": "The recorded file is there but cannot be read; the reason says why"}})
def scaling(settings: SettingsDep) -> schemas.ScalingResult:
    """The numbers of `python bench/scaling.py` on the machine and date it names, as recorded; 404 with the reason
    (and how to record them) when the file is absent."""
    try:
        return read_scaling(settings.bench_results_dir)
    except ScalingUnavailable as err:
        raise HTTPException(err.status, detail=err.reason) from None
