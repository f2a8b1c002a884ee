"""The seeded demo study has what the dashboard, the report and every export need."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.cli import app
from peerlift.demo import seed as demo

runner = CliRunner()


def test_demo_reports_and_exports(sqlite_database, tmp_path, client_for):
    from peerlift.identity.models import User
    from sqlalchemy import select

    with dbmod.transaction() as s:
        assert demo.seed(s) is True
        researcher = s.scalar(select(User).where(User.email == "researcher@demo.test"))
    assert runner.invoke(app, ["report", "--study", "demo", "--out", str(tmp_path / "report"), "--no-pdf"]).exit_code == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Lift Together" in html and "Peer circle + coach" in html
    for fmt in ("csv", "parquet", "fhir", "dprp"):
        result = runner.invoke(app, ["export", "--study", "demo", "--format", fmt, "--out", str(tmp_path / fmt)])
        assert result.exit_code == 0, (fmt, result.output)
        manifest = json.loads((tmp_path / fmt / "manifest.json").read_text())
        assert manifest["format"] == fmt and manifest["files"]
    from tests.conftest import login

    c = client_for(None)
    login(c, researcher, password=demo.PASSWORD)
    page = c.get("/studies/demo/dashboard")
    assert page.status_code == 200 and "Cost per participant" in page.text
    assert c.get("/studies/demo/dashboard/engagement.svg").status_code == 200
