"""Every table of every domain, imported once so that metadata (and Alembic) sees them all."""

from hypervision.audit import models as audit_models
from hypervision.core import idempotency
from hypervision.events import models as event_models
from hypervision.follows import models as follows_models
from hypervision.geo import models as geo_models
from hypervision.geo import place_models
from hypervision.hub import models as hub_models
from hypervision.identity import models as identity_models
from hypervision.logbook import models as logbook_models
from hypervision.opendata import models as opendata_models
from hypervision.products import models as product_models
from hypervision.products import quality_models, source_models
from hypervision.records import models as records_models
from hypervision.reports import models as report_models
from hypervision.soc import models as soc_models
from hypervision.spaces import models as space_models
from hypervision.synthesis import models as synthesis_models

DOMAIN_MODULES = (
    audit_models,
    follows_models,
    geo_models,
    hub_models,
    idempotency,
    identity_models,
    event_models,
    logbook_models,
    opendata_models,
    space_models,
    place_models,
    product_models,
    source_models,
    quality_models,
    records_models,
    report_models,
    soc_models,
    synthesis_models,
)
