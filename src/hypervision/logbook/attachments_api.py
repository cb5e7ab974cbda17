"""Attachments API (to be built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["attachments"])
