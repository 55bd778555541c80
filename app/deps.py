"""Typed dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_templates(request: Request):
    return request.app.state.templates
