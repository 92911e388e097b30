"""The API's translation of the use cases' results, and the names the application state holds.

The work is the library's: data look-ups in :mod:`adpilot.usecases.data_overview`, copy in
:mod:`adpilot.usecases.copy_service` and :mod:`adpilot.usecases.studio`, campaigns in
:mod:`adpilot.usecases.campaigns`, reports in :mod:`adpilot.usecases.reports` and
:mod:`adpilot.usecases.roi`. What stays here is the API's side: frames and results as JSON
(:func:`records`, :func:`jsonable`) and the remedy a not-yet-built table names in the API's
words (:data:`PROFILING_HINT`). The services and errors are re-exported from their old home."""

from __future__ import annotations

from adpilot.errors import NotFoundError, NotReadyError
from adpilot.jsonable import plain, records
from adpilot.usecases.campaigns import CampaignService
from adpilot.usecases.copy_service import CopyService
from adpilot.usecases.data_overview import DataService

__all__ = ["PROFILING_HINT", "CampaignService", "CopyService", "DataService", "NotFoundError",
           "NotReadyError", "jsonable", "records"]

# what a NotReadyError of the API's data service tells the client to do
PROFILING_HINT = "ingest data, then run a profiling job (POST /v1/profiling/jobs)"

jsonable = plain  # the routers' name for it
