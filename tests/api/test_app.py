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


@pytest.mark.parametrize("path", ["/instruments/nope", "/generatex", "/a/b/c"])
def test_a_browser_asking_for_a_missing_page_gets_a_page_with_the_navigation(client, path):
    r = client.get(path, headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Nothing here" in r.text and f"<code>{path}</code>" in r.text
    assert all(f'href="{page.path}"' in r.text for page in PAGES)


@pytest.mark.parametrize(("path", "accept"), [("/instruments/nope", "application/json"), ("/instruments/nope", "*/*"),
                                              ("/api/v1/nope", "text/html"), ("/static/nope.js", "text/html")])
def test_scripts_and_missing_files_still_get_a_json_404(client, path, accept):
    r = client.get(path, headers={"accept": accept})
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_the_guidance_menu_names_its_colours_with_the_right_article(client):
    text = client.get("/instruments/guidance").text
    assert ">an orange shape</option>" in text and ">a red shape</option>" in text and "a orange" not in text
