"""The registry of protected kinds, assembled: every kind the domains declare next to their
models (``records/registry.py`` says what a kind is and what is derived from it). It sits
above the domains; the application hands what the live hub needs to it, and migrations and
tests read it here."""

from __future__ import annotations

from hypervision.geo.models import LAYER_FEATURE_KIND, LAYER_KIND, ZONE_KIND
from hypervision.hub.models import ANNOUNCEMENT_KIND, DOCUMENT_KIND
from hypervision.logbook.models import ATTACHMENT_KIND, COMMENT_KIND, ENTRY_KIND, SITUATION_KIND
from hypervision.opendata.models import PUBLICATION_KIND, RELEASE_KIND, RELEASE_ROW_KIND
from hypervision.products.derived_models import PRODUCT_DERIVATION_KIND, PRODUCT_INPUT_KIND
from hypervision.products.models import (
    PRODUCT_KIND,
    PRODUCT_RULE_CHANGE_KIND,
    PRODUCT_VERSION_KIND,
)
from hypervision.products.quality_models import QUALITY_FAILURE_KIND, QUALITY_RUN_KIND
from hypervision.products.source_models import PRODUCT_SOURCE_KIND, PRODUCT_SOURCE_RUN_KIND
from hypervision.records.registry import Registry
from hypervision.reports.models import REPORT_DELIVERY_KIND, REPORT_SCHEDULE_KIND
from hypervision.spaces.models import SPACE_KIND
from hypervision.synthesis.models import SYNTHESIS_KIND, SYNTHESIS_RECIPIENT_KIND

# Order: the top-level kinds first (a parent is declared before its children).
KINDS = Registry(
    ENTRY_KIND,
    SITUATION_KIND,
    ZONE_KIND,
    LAYER_KIND,
    SYNTHESIS_KIND,
    PRODUCT_KIND,
    SPACE_KIND,
    COMMENT_KIND,
    ATTACHMENT_KIND,
    LAYER_FEATURE_KIND,
    SYNTHESIS_RECIPIENT_KIND,
    PRODUCT_VERSION_KIND,
    PRODUCT_RULE_CHANGE_KIND,
    PRODUCT_SOURCE_KIND,
    PRODUCT_SOURCE_RUN_KIND,
    PRODUCT_DERIVATION_KIND,
    PRODUCT_INPUT_KIND,
    QUALITY_RUN_KIND,
    QUALITY_FAILURE_KIND,
    PUBLICATION_KIND,
    RELEASE_KIND,
    RELEASE_ROW_KIND,
    REPORT_SCHEDULE_KIND,
    REPORT_DELIVERY_KIND,
    DOCUMENT_KIND,
    ANNOUNCEMENT_KIND,
)

# Tables under row-level security that are not kinds of their own: versions and label
# requests (visible with the record they belong to), the outbox, the audit trail, and the map
# cells (counts of entries per label signature: a signature is visible as its entries are,
# a cell with its signature; migration 0011), and security alerts with their rules and state
# (security officers only, like the trail they cite; migration 0024, docs/adr/0040).
SUPPORT_TABLES = (
    "record_versions",
    "label_change_requests",
    "outbox",
    "audit_records",
    "audit_resources",
    "map_signatures",
    "map_cells",
    "alert_rules",
    "security_alerts",
    "alert_cursor",
    "alert_known_addresses",
)

# Tables under row-level security; the catalogue tests check each one.
PROTECTED_TABLES: tuple[str, ...] = (*KINDS.tables(), *SUPPORT_TABLES)
