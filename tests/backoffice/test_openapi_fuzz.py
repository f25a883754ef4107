"""Schemathesis fuzzes the back office from its own OpenAPI file: no generated request gets a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Not only "no 5xx": every answer's status, content type, headers and body must be the ones the file documents.
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance")


def test_no_request_generated_from_the_openapi_file_gets_a_server_error(backoffice_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", str(ROOT / "backoffice" / "openapi.yaml"),
         "--url", backoffice_url, "--checks", CHECKS, "--max-examples", "8", "--seed", "1",
         "--no-color"],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
