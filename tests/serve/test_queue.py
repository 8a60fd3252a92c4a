"""On a real server (loopback): one generation at a time, a full line answered 503 with
Retry-After at once, and a client that leaves stops its decoding loop."""

from __future__ import annotations

import json
import logging
import time

import httpx

LONG = {"prompt": "Once", "max_new_tokens": 1024, "stop_at_eos": False, "seed": 1}


def test_a_full_line_is_answered_503_and_a_leaving_client_stops_decoding(live_server, caplog):
    caplog.set_level(logging.INFO, logger="tinylm.serve.app")
    with httpx.Client(base_url=live_server, timeout=30) as client:
        with client.stream("POST", "/api/generate", json=LONG) as running:
            lines = running.iter_lines()
            assert json.loads(next(lines))["type"] == "start"
            assert json.loads(next(lines))["type"] == "token"
            # The server lets none wait (limits.waiting=0): the next request is turned away.
            started = time.perf_counter()
            busy = client.post("/api/generate", json={"prompt": "Once"})
            assert time.perf_counter() - started < 2  # answered, not left to stall
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "5"
            assert busy.json()["error"].startswith("The model is busy")
            busy_attention = client.post("/api/attention", json={"prompt": "Once"})
            assert busy_attention.status_code == 503
        # The stream is closed after two of 1,024 tokens: its decoding stops, and the model is
        # free again well before 1,024 tokens could have been drawn.
        deadline = time.perf_counter() + 10
        while "decoding stopped" not in caplog.text and time.perf_counter() < deadline:
            time.sleep(0.02)
        (stopped,) = [r.message for r in caplog.records if "decoding stopped" in r.message]
        events_sent = int(stopped.split("after ")[1].split(" events")[0])
        assert events_sent < 512  # 19 on a quiet machine
        reply = client.post("/api/generate", json={"prompt": "Once", "max_new_tokens": 5})
        assert reply.status_code == 200
        assert json.loads(reply.text.splitlines()[-1])["type"] == "end"
