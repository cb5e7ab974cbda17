"""The message of a scheduled report, sent through the syntheses' mail (``synthesis.mail``):
the PDF made for its recipient travels as an attachment only when it holds nothing above the
lowest level; otherwise the message has no title and no content, only where to read it."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import urlencode

from hypervision.config import Settings
from hypervision.identity.models import User
from hypervision.reports.models import ReportSchedule
from hypervision.reports.render import Report
from hypervision.synthesis.mail import deliver

__all__ = ["deliver", "message_for", "report_link", "report_path"]


def report_path(schedule: ReportSchedule) -> str:
    """The report's path in the application, rendered again as whoever opens it."""
    query = urlencode([("module", m) for m in schedule.module_ids])
    path = f"/api/v1/spaces/{schedule.space_id}/report.pdf"
    return f"{path}?{query}" if query else path


def report_link(settings: Settings, schedule: ReportSchedule) -> str:
    """The report's full address (mails and the API's list)."""
    return settings.public_url.rstrip("/") + report_path(schedule)


def message_for(
    settings: Settings, schedule: ReportSchedule, user: User, report: Report
) -> EmailMessage:
    link = report_link(settings, schedule)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = user.email or ""
    if report.level != settings.label_levels[0]:  # protected: nothing but where to read it
        message["Subject"] = "[Hypervision] Un rapport vous attend dans l'application"
        message.set_content(
            f"Bonjour {user.full_name},\n\n"
            "Un rapport protégé vous a été adressé. Pour des raisons de sécurité, il n'est pas "
            f"joint à ce message : consultez-le dans l'application.\n\n{link}\n\n— Hypervision\n"
        )
        return message
    message["Subject"] = f"[Hypervision] Rapport : {schedule.name}"
    message.set_content(
        f"Bonjour {user.full_name},\n\nVeuillez trouver ci-joint le rapport « {schedule.name} » "
        f"de l'espace « {report.space.title} », établi avec vos droits de lecture.\n\n"
        f"{link}\n\n— Hypervision\n"
    )
    message.add_attachment(
        report.pdf, maintype="application", subtype="pdf", filename="rapport.pdf"
    )
    return message
