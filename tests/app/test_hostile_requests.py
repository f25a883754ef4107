"""Hostile and malformed requests on every route of the engine: a clear answer in the route's own
format, never a trace, never a 500."""

from __future__ import annotations

import pytest

ROUTES = ["/ussd/africastalking", "/ussd/africastalking/events", "/payments/callback", "/healthz", "/readyz",
          "/metrics", "/nowhere", "/ussd/other"]
BODIES = [
    ("application/x-www-form-urlencoded", b"sessionId=%ZZ&text=%00%01"),
    ("application/x-www-form-urlencoded", b"&&&===&&"),
    ("application/json", b"{\"sessionId\": [1, 2], \"text\": {\"$gt\": \"\"}}"),
    ("application/octet-stream", bytes(range(256)) * 8),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--"),
    ("text/plain", "' OR 1=1 -- <script>alert(1)</script> \u202e".encode()),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("content_type", "body"), BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_no_route_answers_a_hostile_body_with_a_500_or_a_trace(app, route, content_type, body):
    client = app.test_client()
    for method in ("POST", "GET", "PUT"):
        response = client.open(route, method=method, data=body, content_type=content_type)
        text = response.get_data(as_text=True)
        assert response.status_code < 500 or route == "/readyz", (method, route, response.status_code, text)
        assert "Traceback" not in text and "File \"" not in text
        if route == "/ussd/africastalking":
            # The gateway shows anything but 200 + END as a network error; GET and PUT stay 405.
            assert text.startswith("END "), text
            assert response.mimetype == "text/plain"
            assert response.status_code == (200 if method == "POST" else 405), (method, response.status_code)
        elif response.status_code >= 400 and not route.startswith("/ussd"):
            assert response.is_json, (route, text)
