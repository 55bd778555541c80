"""The app's skeleton: health, pages, the local Plotly bundle, offline API docs."""

import pytest

from app.web.routes.pages import PAGES


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_after_startup(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["ready"] is True


@pytest.mark.parametrize("path", ["/"] + [p.path for p in PAGES])
def test_pages_render(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "Diffusion Lab" in response.text
    assert "http://" not in response.text.replace("http://www.w3.org", "")
    assert "https://" not in response.text.replace("https://www.w3.org", "")


def test_plotly_bundle_is_served_locally(client):
    response = client.get("/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert len(response.content) > 1_000_000
    assert b"plotly" in response.content[:2000].lower()


def test_api_docs_work_offline(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr" not in docs.text and "unpkg" not in docs.text
    assert client.get("/openapi.json").json()["info"]["title"] == "Diffusion Lab"


def test_unknown_page_is_404(client):
    assert client.get("/no-such-page").status_code == 404
