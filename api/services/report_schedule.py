"""Monthly reports (月报) on a schedule: the units an admin picks, and the run that renders
each one's report of a month into ``<data_dir>/reports/<unit>/<YYYY-MM>.pdf``.

The run is ``zhili report run-scheduled [--month]`` (cron calls it) or the app's own
monthly task (``ZHILI_REPORT_SCHEDULE=true``). A report already on disk is kept (the run
is safe to repeat); ``force`` renders it again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.saved import ReportSchedule
from api.errors import ApiError
from api.principal import Principal
from api.services.audit import audit
from api.services.report import check_month, monthly_report
from api.services.scope import subtree_codes, unit_in_scope

MAX_UNITS = 500


def report_path(data_dir: Path, unit: str, month: str) -> Path:
    """Where the scheduled report of ``unit`` for ``month`` is kept."""
    return data_dir / "reports" / unit / f"{month}.pdf"


def last_month(today: dt.date) -> str:
    """The month before ``today``'s (YYYY-MM): the one a run at the start of a month reports."""
    first = today.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def local_today(timezone: str) -> dt.date:
    """Today in the city's time zone."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


def get_schedule(session: Session, who: Principal) -> dict:
    """The scheduled units in ``who``'s subtree (codes and names)."""
    rows = session.execute(
        select(ReportSchedule.unit_code, ReportSchedule.added_by, ReportSchedule.added_at)
        .where(ReportSchedule.unit_code.in_(subtree_codes(who.unit_code)))
        .order_by(ReportSchedule.unit_code)
    ).all()
    units = []
    for code, by, at in rows:
        unit = unit_in_scope(session, who.unit_code, code)
        units.append(
            {
                "unit": code,
                "name": unit.name if unit else code,
                "added_by": by,
                "added_at": at.isoformat() if at else None,
            }
        )
    return {"units": units}


def put_schedule(session: Session, who: Principal, codes: list[str]) -> dict:
    """Set the scheduled units in ``who``'s subtree to ``codes`` (an admin's pick); units
    outside the subtree are left as they are. 404 for a unit outside it, nothing written."""
    if len(codes) > MAX_UNITS:
        raise ApiError(422, f"at most {MAX_UNITS} units")
    wanted = list(dict.fromkeys(c.strip() for c in codes if c.strip()))
    for code in wanted:
        if unit_in_scope(session, who.unit_code, code) is None:
            raise ApiError(404, f"no unit {code!r} in your jurisdiction")
    mine = session.scalars(
        select(ReportSchedule).where(ReportSchedule.unit_code.in_(subtree_codes(who.unit_code)))
    ).all()
    now = dt.datetime.now(dt.UTC)
    for row in mine:
        if row.unit_code not in wanted:
            session.delete(row)
    have = {row.unit_code for row in mine}
    for code in wanted:
        if code not in have:
            session.add(ReportSchedule(unit_code=code, added_by=who.name, added_at=now))
    audit(session, who.name, who.unit_code, "report.schedule", detail={"units": wanted})
    session.flush()
    return get_schedule(session, who)


@dataclass(frozen=True)
class Rendered:
    """One scheduled unit's report of the run: its path and what was done (written,
    kept: already there, failed: the reason)."""

    unit: str
    path: Path
    status: str
    reason: str = ""


def run_scheduled(
    session: Session, data_dir: Path, month: str, force: bool = False
) -> list[Rendered]:
    """Render the report of ``month`` of every scheduled unit into the data folder; one
    unit's failure does not stop the others."""
    check_month(month)
    codes = session.scalars(select(ReportSchedule.unit_code).order_by(ReportSchedule.unit_code))
    done = []
    for code in list(codes):
        path = report_path(data_dir, code, month)
        if path.exists() and not force:
            done.append(Rendered(code, path, "kept"))
            continue
        if unit_in_scope(session, code, code) is None:
            done.append(Rendered(code, path, "failed", f"no unit {code!r}"))
            continue
        try:
            report = monthly_report(session, code, month, pngs=False)
        except ApiError as exc:
            done.append(Rendered(code, path, "failed", exc.message))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".pdf.part")
        partial.write_bytes(report.pdf)
        partial.replace(path)  # a reader never sees half a file
        audit(session, "schedule", code, "report.read", target=code, detail={"month": month})
        done.append(Rendered(code, path, "written"))
    return done


CHECK_SECONDS = 3600  # the app's task looks once an hour whether a month is due


async def monthly_run(database_url: str, data_dir: Path, timezone: str) -> None:
    """The app's own schedule (``ZHILI_REPORT_SCHEDULE=true``): once a month, as soon as a
    month has ended, render the scheduled units' reports of it (in a worker thread, so
    the server keeps answering); a month whose reports were all made is not looked at
    again by this process. Runs until cancelled."""
    import asyncio
    import logging

    from api.db.session import session_scope

    log = logging.getLogger("zhili.reports")
    done_month = None

    def run(month: str) -> list[Rendered]:
        with session_scope(database_url) as session:
            return run_scheduled(session, data_dir, month)

    while True:
        month = last_month(local_today(timezone))
        if month != done_month:
            try:
                made = await asyncio.to_thread(run, month)
            except Exception:  # the server outlives a bad run (logged)
                log.exception("scheduled monthly reports of %s failed", month)
            else:
                failed = [r for r in made if r.status == "failed"]
                for r in failed:
                    log.warning("monthly report of %s for %s: %s", r.unit, month, r.reason)
                if not failed:
                    done_month = month
        await asyncio.sleep(CHECK_SECONDS)
